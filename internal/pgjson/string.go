package pgjson

import "unicode/utf8"

// AppendString appends s as a JSON string: RFC 8259 escaping, invalid UTF-8 replaced by U+FFFD,
// and U+2028/U+2029 escaped so that the output is also safe inside JavaScript source.
func AppendString(dst []byte, s string) []byte { return appendString(dst, s) }

// rawSafe marks the ASCII bytes that may appear unescaped inside a JSON string.
var rawSafe = func() (t [utf8.RuneSelf]bool) {
	for b := 0x20; b < utf8.RuneSelf; b++ {
		t[b] = b != '"' && b != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// plainWord reports whether 8 bytes are all printable ASCII other than '"' and '\\', so that
// the common case copies text a word at a time. It uses the has-zero-byte trick: (x-0x01..) &^ x
// has a byte's high bit set where x has a zero byte, with no false positives for "any".
func plainWord(w uint64) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	ctl := w - 0x20*ones // a high bit where a byte is below 0x20 (or borrowed into from one)
	quote := (w ^ '"'*ones) - ones
	bslash := (w ^ '\\'*ones) - ones
	return ((ctl|quote|bslash)&^w|w)&highs == 0
}

// appendString is generic so that text from the wire ([]byte) and Go strings share one
// implementation without a conversion that would copy.
func appendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		for i+8 <= len(s) && plainWord(uint64(s[i])|uint64(s[i+1])<<8|uint64(s[i+2])<<16|uint64(s[i+3])<<24|
			uint64(s[i+4])<<32|uint64(s[i+5])<<40|uint64(s[i+6])<<48|uint64(s[i+7])<<56) {
			i += 8
		}
		if i == len(s) {
			break
		}
		b := s[i]
		if b < utf8.RuneSelf {
			if rawSafe[b] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xf])
			}
			i++
			start = i
			continue
		}
		// string(s[i:j]) of at most 4 bytes does not allocate for a []byte: the compiler uses a
		// stack buffer for conversions that do not escape.
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
