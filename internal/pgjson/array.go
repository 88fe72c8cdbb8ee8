package pgjson

// appendArray writes array_out text ({1,NULL,3}, {{"a b","c\"d"}}, [0:1]={1,2}) as a JSON array
// of elements of kind ek. It reports false on text it does not recognise, leaving the caller to
// truncate dst and write a string instead.
func appendArray(dst, t []byte, ek kind, delim byte) ([]byte, bool) {
	i := 0
	if len(t) > 0 && t[0] == '[' {
		// Lower bounds other than 1 print a dimension decoration; JSON arrays have no bounds.
		for i < len(t) && t[i] != '=' {
			i++
		}
		i++
	}
	if i >= len(t) || t[i] != '{' {
		return dst, false
	}
	// Quoted elements with backslash escapes are unescaped here; most fit on the stack.
	var buf [256]byte
	scratch := buf[:0]
	depth := 0
	for {
		if i >= len(t) {
			return dst, false
		}
		switch c := t[i]; c {
		case '{':
			dst = append(dst, '[')
			depth++
			i++
			if i < len(t) && t[i] == '}' {
				break // an empty array: closed below
			}
			continue
		case '"':
			j, esc := i+1, false
			for j < len(t) && t[j] != '"' {
				if t[j] == '\\' {
					esc = true
					j++
				}
				j++
			}
			if j >= len(t) {
				return dst, false
			}
			raw := t[i+1 : j]
			if esc {
				scratch = unescapeElem(scratch[:0], raw)
				raw = scratch
			}
			dst = appendKind(dst, ek, raw)
			i = j + 1
		default:
			j := i
			for j < len(t) && t[j] != delim && t[j] != '}' {
				j++
			}
			raw := t[i:j]
			switch {
			case len(raw) == 0:
				return dst, false
			case string(raw) == "NULL": // a string "NULL" is always quoted
				dst = append(dst, "null"...)
			default:
				dst = appendKind(dst, ek, raw)
			}
			i = j
		}
		for i < len(t) && t[i] == '}' {
			dst = append(dst, ']')
			depth--
			i++
			if depth == 0 {
				return dst, i == len(t)
			}
		}
		if i >= len(t) || t[i] != delim {
			return dst, false
		}
		dst = append(dst, ',')
		i++
	}
}

// unescapeElem removes array_out's backslash escapes from a quoted element.
func unescapeElem(dst, raw []byte) []byte {
	for i := 0; i < len(raw); i++ {
		if raw[i] == '\\' && i+1 < len(raw) {
			i++
		}
		dst = append(dst, raw[i])
	}
	return dst
}
