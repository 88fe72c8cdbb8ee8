// Package pgjson converts between PostgreSQL's text-format wire values and JSON, for results
// written row by row into one reused buffer and for parameters the server types itself.
//
// Result values become JSON as follows (this is the public contract of cairn's tools):
//
//   - NULL is null; bool is true or false.
//   - int2, int4, int8, oid, xid, cid and xid8 are numbers when |v| ≤ 2^53, so that JavaScript
//     clients read them exactly; larger values are strings holding the exact digits.
//   - numeric is a number when it has at most 15 significant digits (any such decimal survives a
//     round trip through a double), written as PostgreSQL printed it (0.1000 stays 0.1000);
//     otherwise, and for NaN and ±Infinity, a string with the exact text.
//   - float4 and float8 are numbers; NaN, Infinity and -Infinity are strings.
//   - json and jsonb are embedded verbatim; jsonpath is a string.
//   - timestamptz is an RFC 3339 string (2026-11-23T12:13:27.123456Z, +05:30 offsets kept, +05
//     written +05:00); timestamp is the same without an offset; date is 2026-11-23. Values RFC
//     3339 cannot express (infinity, -infinity, BC, years past 9999, offsets with seconds) and
//     text in a non-ISO DateStyle are PostgreSQL's text unchanged, as a string. time, timetz and
//     interval are their text as a string.
//   - bytea is a base64 string (standard encoding, padded).
//   - arrays of any known element type, multi-dimensional and with NULL elements, are JSON
//     arrays whose elements follow these rules; lower-bound decorations like [0:1]= are dropped.
//   - pgvector's vector and halfvec are arrays of numbers; sparsevec is a string.
//   - everything else (text, varchar, uuid, enums, inet, money, geometric types, tsvector, xml,
//     bit strings, records, ranges, unknown types) is a string of the text.
//
// Text that does not have the expected shape (a session setting changed the output format, say)
// is written as a string rather than as broken JSON.
//
// Parameters go the other way: ParamText turns a JSON value into text for the server's input
// function of whatever type the server infers for the parameter, and ParamTextFor does the same
// for a known type, which only JSON arrays need (an array literal, JSON text or a vector).
package pgjson

import (
	"bytes"
	"encoding/base64"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgtype"
)

// Encoder appends PostgreSQL text-format values to a buffer as JSON. It is safe for concurrent
// use once SetExtensionOIDs has been called.
type Encoder struct {
	m                          *pgtype.Map
	vector, halfvec, sparsevec uint32
}

// NewEncoder returns an encoder; m is used to decode array (and other rare) types. Types it does
// not know are written as JSON strings.
func NewEncoder(m *pgtype.Map) *Encoder {
	if m == nil {
		m = pgtype.NewMap()
	}
	return &Encoder{m: m}
}

// SetExtensionOIDs records the OIDs of extension types whose OID differs per database (pgvector's
// vector, halfvec, sparsevec). Zero means absent. Call it before sharing the encoder.
func (e *Encoder) SetExtensionOIDs(vector, halfvec, sparsevec uint32) {
	e.vector, e.halfvec, e.sparsevec = vector, halfvec, sparsevec
}

// kind is how a type's text becomes JSON.
type kind uint8

const (
	kOther kind = iota // not a built-in scalar we know: an array, an extension type, or a string
	kString
	kJSON
	kBool
	kInt
	kNumeric
	kFloat
	kTimestamptz
	kTimestamp
	kBytea
	kVector
)

// kindOf classifies the built-in types by OID; a switch of constants compiles to a jump table or
// binary search, far cheaper than the map lookup that arrays need.
func (e *Encoder) kindOf(oid uint32) kind {
	switch oid {
	case pgtype.BoolOID:
		return kBool
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID, pgtype.OIDOID, pgtype.XIDOID,
		pgtype.CIDOID, pgtype.XID8OID, pgtype.OID8OID:
		return kInt
	case pgtype.NumericOID:
		return kNumeric
	case pgtype.Float4OID, pgtype.Float8OID:
		return kFloat
	case pgtype.JSONOID, pgtype.JSONBOID:
		return kJSON
	case pgtype.TimestamptzOID:
		return kTimestamptz
	case pgtype.TimestampOID:
		return kTimestamp
	case pgtype.ByteaOID:
		return kBytea
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.QCharOID,
		pgtype.UUIDOID, pgtype.DateOID, pgtype.TimeOID, pgtype.TimetzOID, pgtype.IntervalOID,
		pgtype.JSONPathOID, pgtype.UnknownOID, pgtype.InetOID, pgtype.CIDROID, pgtype.MacaddrOID,
		pgtype.Macaddr8OID, pgtype.XMLOID, pgtype.TSVectorOID, pgtype.RecordOID, 0:
		return kString
	}
	if oid == e.vector || oid == e.halfvec {
		return kVector
	}
	return kOther
}

// AppendValue appends the JSON form of one value; text == nil means SQL NULL.
func (e *Encoder) AppendValue(dst []byte, oid uint32, text []byte) []byte {
	if text == nil {
		return append(dst, "null"...)
	}
	k := e.kindOf(oid)
	if k != kOther {
		return appendKind(dst, k, text)
	}
	if oid != e.sparsevec {
		if t, ok := e.m.TypeForOID(oid); ok {
			if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
				delim := ac.Delimiter
				if delim == 0 {
					delim = ','
				}
				start := len(dst)
				if out, ok := appendArray(dst, text, e.kindOf(ac.ElementType.OID), delim); ok {
					return out
				}
				dst = dst[:start]
			}
		}
	}
	return appendString(dst, text)
}

// appendKind writes a non-NULL scalar of kind k.
func appendKind(dst []byte, k kind, t []byte) []byte {
	switch k {
	case kBool:
		if len(t) == 1 {
			switch t[0] {
			case 't':
				return append(dst, "true"...)
			case 'f':
				return append(dst, "false"...)
			}
		}
	case kInt:
		if isSafeInt(t) {
			return append(dst, t...)
		}
	case kNumeric:
		if isShortNumeric(t) {
			return append(dst, t...)
		}
	case kFloat:
		if isJSONNumber(t) {
			return append(dst, t...)
		}
	case kJSON:
		// The server has validated the JSON; only a SQL_ASCII database can hand us bytes that
		// are not UTF-8, and those must not leak into the output unescaped.
		if utf8.Valid(t) {
			return append(dst, t...)
		}
	case kTimestamptz:
		return appendTimestamp(dst, t, true)
	case kTimestamp:
		return appendTimestamp(dst, t, false)
	case kBytea:
		return appendBytea(dst, t)
	case kVector:
		if isNumberList(t) {
			return append(dst, t...)
		}
	}
	return appendString(dst, t)
}

// maxSafeInt is 2^53: every integer up to it in magnitude is exact in a double.
const maxSafeInt = "9007199254740992"

func isSafeInt(t []byte) bool {
	d := t
	if len(d) > 0 && d[0] == '-' {
		d = d[1:]
	}
	if len(d) == 0 || len(d) > len(maxSafeInt) || (d[0] == '0' && len(d) > 1) {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return len(d) < len(maxSafeInt) || string(d) <= maxSafeInt
}

// isShortNumeric reports whether numeric text is a plain decimal with at most 15 significant
// digits. Trailing zeros count (0.1000 has 4), which keeps big round integers like 10^20 exact as
// strings, like int8. Leading zeros after the point are bounded so that tiny values stay out of
// the double's subnormal range, where fewer digits survive.
func isShortNumeric(t []byte) bool {
	i := 0
	if len(t) > 0 && t[0] == '-' {
		i++
	}
	sig, lead, intStart := 0, 0, i
	for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		if sig > 0 || t[i] != '0' {
			sig++
		}
	}
	if i == intStart || (t[intStart] == '0' && i-intStart > 1) {
		return false // NaN, Infinity, or a shape numeric_out does not print
	}
	if i < len(t) && t[i] == '.' {
		i++
		fracStart := i
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
			if sig > 0 || t[i] != '0' {
				sig++
			} else {
				lead++
			}
		}
		if i == fracStart {
			return false
		}
	}
	return i == len(t) && sig <= 15 && lead <= 290
}

// isJSONNumber checks RFC 8259 number syntax, which float8out's output (1e+100, -0, 1.5e-07)
// satisfies except for NaN and the infinities.
func isJSONNumber(t []byte) bool {
	i := 0
	if i < len(t) && t[i] == '-' {
		i++
	}
	switch {
	case i >= len(t):
		return false
	case t[i] == '0':
		i++
	case t[i] >= '1' && t[i] <= '9':
		for i++; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		}
	default:
		return false
	}
	if i < len(t) && t[i] == '.' {
		i++
		s := i
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		}
		if i == s {
			return false
		}
	}
	if i < len(t) && (t[i] == 'e' || t[i] == 'E') {
		i++
		if i < len(t) && (t[i] == '+' || t[i] == '-') {
			i++
		}
		s := i
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		}
		if i == s {
			return false
		}
	}
	return i == len(t)
}

// isNumberList checks pgvector's text form, [1,2.5,3], which is then already a JSON array.
func isNumberList(t []byte) bool {
	if len(t) < 3 || t[0] != '[' || t[len(t)-1] != ']' {
		return false
	}
	body := t[1 : len(t)-1]
	for len(body) > 0 {
		j := bytes.IndexByte(body, ',')
		if j < 0 {
			return isJSONNumber(body)
		}
		if !isJSONNumber(body[:j]) {
			return false
		}
		body = body[j+1:]
	}
	return false // a trailing comma
}

func isDigits(t []byte) bool {
	for _, c := range t {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// appendTimestamp rewrites DateStyle ISO output, 2026-11-23 12:13:27.123456+05:30, as RFC 3339.
// Anything else (infinity, BC, five-digit years, offsets with seconds, other DateStyles) cannot
// be RFC 3339 and stays PostgreSQL's text.
func appendTimestamp(dst, t []byte, zoned bool) []byte {
	const layout = "0000-00-00 00:00:00"
	if len(t) < len(layout) {
		return appendString(dst, t)
	}
	for j := range len(layout) {
		if c := t[j]; (layout[j] == '0' && c-'0' > 9) || (layout[j] != '0' && c != layout[j]) {
			return appendString(dst, t)
		}
	}
	i := len(layout)
	if i < len(t) && t[i] == '.' {
		i++
		s := i
		for ; i < len(t) && t[i] >= '0' && t[i] <= '9'; i++ {
		}
		if i == s {
			return appendString(dst, t)
		}
	}
	clock := t[11:i]
	if !zoned {
		if i != len(t) {
			return appendString(dst, t)
		}
		dst = append(dst, '"')
		dst = append(dst, t[:10]...)
		dst = append(dst, 'T')
		dst = append(dst, clock...)
		return append(dst, '"')
	}
	off := t[i:]
	if len(off) < 3 || (off[0] != '+' && off[0] != '-') || !isDigits(off[1:3]) {
		return appendString(dst, t)
	}
	switch {
	case len(off) == 3: // +05
	case len(off) == 6 && off[3] == ':' && isDigits(off[4:6]): // +05:30
	default: // +05:30:45 (local mean time) or a BC suffix
		return appendString(dst, t)
	}
	dst = append(dst, '"')
	dst = append(dst, t[:10]...)
	dst = append(dst, 'T')
	dst = append(dst, clock...)
	switch {
	case string(off) == "+00":
		dst = append(dst, 'Z')
	case len(off) == 3:
		dst = append(dst, off...)
		dst = append(dst, ":00"...)
	default:
		dst = append(dst, off...)
	}
	return append(dst, '"')
}

// unhex maps hex digits to their value and everything else to 0xff.
var unhex = func() (t [256]byte) {
	for i := range t {
		t[i] = 0xff
	}
	for i := byte(0); i < 10; i++ {
		t['0'+i] = i
	}
	for i := byte(0); i < 6; i++ {
		t['a'+i], t['A'+i] = 10+i, 10+i
	}
	return t
}()

// appendBytea writes bytea text (hex format \x0a0b, or the escape format a session may select)
// as base64, decoding through a small stack buffer whose size is a multiple of 3 so that only the
// last chunk carries padding.
func appendBytea(dst, t []byte) []byte {
	start := len(dst)
	var chunk [96]byte
	n := 0
	flush := func() {
		dst = base64.StdEncoding.AppendEncode(dst, chunk[:n])
		n = 0
	}
	if len(t) >= 2 && t[0] == '\\' && t[1] == 'x' {
		h := t[2:]
		if len(h)%2 != 0 {
			return appendString(dst, t)
		}
		dst = append(dst, '"')
		for i := 0; i < len(h); i += 2 {
			hi, lo := unhex[h[i]], unhex[h[i+1]]
			if hi > 15 || lo > 15 {
				return appendString(dst[:start], t)
			}
			chunk[n] = hi<<4 | lo
			n++
			if n == len(chunk) {
				flush()
			}
		}
		flush()
		return append(dst, '"')
	}
	dst = append(dst, '"')
	for i := 0; i < len(t); {
		c := t[i]
		if c == '\\' {
			switch {
			case i+1 < len(t) && t[i+1] == '\\':
				i += 2
			case i+3 < len(t) && t[i+1] >= '0' && t[i+1] <= '3' && t[i+2] >= '0' && t[i+2] <= '7' && t[i+3] >= '0' && t[i+3] <= '7':
				c = (t[i+1]-'0')<<6 | (t[i+2]-'0')<<3 | (t[i+3] - '0')
				i += 4
			default:
				return appendString(dst[:start], t)
			}
		} else {
			i++
		}
		chunk[n] = c
		n++
		if n == len(chunk) {
			flush()
		}
	}
	flush()
	return append(dst, '"')
}
