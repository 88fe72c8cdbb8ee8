package pgjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgtype"
)

// ParamText turns one JSON-decoded parameter (decoded with json.Decoder.UseNumber(): nil, bool,
// json.Number, string, []any, map[string]any) into the text the server's input function for an
// inferred type accepts. Returns nil for NULL.
//
// Numbers keep their JSON digits, so 50000 binds to bigint or numeric alike; strings are passed
// as they are, so they bind to uuid, timestamptz, jsonb or date columns; objects become JSON text.
// A JSON array is guessed to be a PostgreSQL array literal unless it holds objects, in which case
// it becomes JSON text; ParamNeedsType tells when to ask the server instead of guessing.
func ParamText(v any) ([]byte, error) {
	switch v := v.(type) {
	case []any:
		if holdsObject(v) {
			return appendJSONValue(nil, v)
		}
		return appendArrayLiteral(nil, v, elemPlain, ',')
	case map[string]any:
		return appendJSONValue(nil, v)
	}
	return scalarText(v)
}

// ParamNeedsType reports whether ParamText's guess could be wrong without the parameter's type
// (true for JSON arrays, so the caller does a Describe first).
func ParamNeedsType(v any) bool {
	_, ok := v.([]any)
	return ok
}

// ParamTextFor does the same as ParamText when the parameter's type OID is known (from a
// Describe): a JSON array becomes an array literal for an array type, JSON text for json/jsonb
// (or text), and '[1,2,3]' for pgvector's vector/halfvec. Types neither the encoder nor its map
// knows (domains, enums) get ParamText's guess, which suits a domain over an array type.
func (e *Encoder) ParamTextFor(oid uint32, v any) ([]byte, error) {
	switch v := v.(type) {
	case []any:
		return e.arrayParam(oid, v)
	case map[string]any:
		if e.jsonLike(oid) {
			return appendJSONValue(nil, v)
		}
		return nil, fmt.Errorf("JSON objects bind to json/jsonb or text parameters, not to %s: pass a %s value instead", e.typeName(oid), e.typeName(oid))
	}
	return scalarText(v)
}

func (e *Encoder) arrayParam(oid uint32, v []any) ([]byte, error) {
	switch {
	case oid == pgtype.JSONOID || oid == pgtype.JSONBOID:
		return appendJSONValue(nil, v)
	case oid != 0 && (oid == e.vector || oid == e.halfvec):
		return appendVectorLiteral(nil, v)
	case oid != 0 && oid == e.sparsevec:
		return nil, errors.New(`sparsevec parameters take pgvector's text form as a string, e.g. "{1:1.5,3:2}/5", not a JSON array`)
	}
	if t, ok := e.m.TypeForOID(oid); ok {
		if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
			mode := elemPlain
			switch et := ac.ElementType.OID; {
			case et == pgtype.JSONOID || et == pgtype.JSONBOID:
				mode = elemJSON
			case et != 0 && (et == e.vector || et == e.halfvec):
				mode = elemVector
			}
			delim := ac.Delimiter
			if delim == 0 {
				delim = ','
			}
			return appendArrayLiteral(nil, v, mode, delim)
		}
	}
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.UnknownOID, 0:
		return appendJSONValue(nil, v)
	}
	if e.unknownType(oid) {
		// A domain or an extension type: the server judges ParamText's guess.
		return ParamText(v)
	}
	return nil, fmt.Errorf("JSON arrays bind to array, json/jsonb or vector parameters, not to %s: pass a single value, or write = ANY($n) to compare with each element", e.typeName(oid))
}

// unknownType reports whether neither the encoder nor its type map knows the type.
func (e *Encoder) unknownType(oid uint32) bool {
	if e.kindOf(oid) != kOther || oid == e.sparsevec {
		return false
	}
	_, known := e.m.TypeForOID(oid)
	return !known
}

// jsonLike reports whether JSON text is the natural text for a parameter of this type.
func (e *Encoder) jsonLike(oid uint32) bool {
	switch oid {
	case pgtype.JSONOID, pgtype.JSONBOID, pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID,
		pgtype.UnknownOID, 0:
		return true
	}
	return e.unknownType(oid)
}

// typeName names a type the way SQL users write it, for error messages.
func (e *Encoder) typeName(oid uint32) string {
	switch oid {
	case pgtype.BoolOID:
		return "boolean"
	case pgtype.Int2OID:
		return "smallint"
	case pgtype.Int4OID:
		return "integer"
	case pgtype.Int8OID:
		return "bigint"
	case pgtype.Float4OID:
		return "real"
	case pgtype.Float8OID:
		return "double precision"
	case pgtype.VarcharOID:
		return "character varying"
	case pgtype.BPCharOID:
		return "character"
	case pgtype.TimestamptzOID:
		return "timestamp with time zone"
	case pgtype.TimestampOID:
		return "timestamp without time zone"
	case pgtype.TimetzOID:
		return "time with time zone"
	case pgtype.TimeOID:
		return "time without time zone"
	}
	switch oid {
	case 0:
		return "an unknown type"
	case e.vector:
		return "vector"
	case e.halfvec:
		return "halfvec"
	case e.sparsevec:
		return "sparsevec"
	}
	if t, ok := e.m.TypeForOID(oid); ok {
		if ac, ok := t.Codec.(*pgtype.ArrayCodec); ok && ac.ElementType != nil {
			return e.typeName(ac.ElementType.OID) + "[]"
		}
		return t.Name
	}
	return "type OID " + strconv.FormatUint(uint64(oid), 10)
}

// scalarText handles everything but arrays and objects, which are the same for every type.
func scalarText(v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case bool:
		if v {
			return []byte("true"), nil
		}
		return []byte("false"), nil
	case json.Number:
		if !isJSONNumber([]byte(v)) {
			return nil, fmt.Errorf("%q is not a JSON number: pass a number like 12.5, or a string", string(v))
		}
		return []byte(v), nil
	case string:
		if strings.IndexByte(v, 0) >= 0 {
			return nil, errNUL
		}
		return append([]byte{}, v...), nil // non-nil even when empty: nil would be NULL
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("NaN and infinities are not JSON numbers: pass the string \"NaN\" or \"Infinity\" for float columns")
		}
		return strconv.AppendFloat(nil, v, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt(nil, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(nil, v, 10), nil
	}
	return nil, fmt.Errorf("unsupported parameter of Go type %T: decode parameters with encoding/json (UseNumber)", v)
}

var errNUL = errors.New(`string contains a NUL character (\u0000), which PostgreSQL text cannot hold: remove it, or pass binary data as base64 or hex text (decode($n, 'base64'))`)

func holdsObject(v []any) bool {
	for _, x := range v {
		switch x := x.(type) {
		case map[string]any:
			return true
		case []any:
			if holdsObject(x) {
				return true
			}
		}
	}
	return false
}

// elemMode says how nested JSON arrays inside an array literal are read.
type elemMode uint8

const (
	elemPlain  elemMode = iota // nested arrays are further dimensions
	elemJSON                   // json[]/jsonb[]: nested arrays and objects are JSON values
	elemVector                 // vector[]: nested arrays are vectors
)

// appendArrayLiteral writes v as an array literal: strings always quoted (so that "NULL", "" and
// "a,b" stay strings), NULL unquoted, nested arrays as further dimensions.
func appendArrayLiteral(dst []byte, v []any, mode elemMode, delim byte) ([]byte, error) {
	dst = append(dst, '{')
	for i, x := range v {
		if i > 0 {
			dst = append(dst, delim)
		}
		var err error
		switch x := x.(type) {
		case nil:
			dst = append(dst, "NULL"...)
		case string:
			if strings.IndexByte(x, 0) >= 0 {
				return nil, fmt.Errorf("element %d: %w", i, errNUL)
			}
			dst = appendQuotedElem(dst, x)
		case []any:
			switch mode {
			case elemJSON:
				var j []byte
				if j, err = appendJSONValue(nil, x); err == nil {
					dst = appendQuotedElem(dst, string(j))
				}
			case elemVector:
				var j []byte
				if j, err = appendVectorLiteral(nil, x); err == nil {
					dst = appendQuotedElem(dst, string(j))
				}
			default:
				dst, err = appendArrayLiteral(dst, x, mode, delim)
			}
		case map[string]any:
			var j []byte
			if j, err = appendJSONValue(nil, x); err == nil {
				dst = appendQuotedElem(dst, string(j))
			}
		default:
			var s []byte
			if s, err = scalarText(x); err == nil {
				dst = append(dst, s...) // numbers and booleans need no quoting
			}
		}
		if err != nil {
			return nil, fmt.Errorf("element %d: %w", i, err)
		}
	}
	return append(dst, '}'), nil
}

func appendQuotedElem(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			dst = append(dst, '\\')
		}
		dst = append(dst, s[i])
	}
	return append(dst, '"')
}

// appendVectorLiteral writes pgvector's text form, [1,2,3].
func appendVectorLiteral(dst []byte, v []any) ([]byte, error) {
	dst = append(dst, '[')
	for i, x := range v {
		if i > 0 {
			dst = append(dst, ',')
		}
		switch x := x.(type) {
		case json.Number:
			if !isJSONNumber([]byte(x)) {
				return nil, fmt.Errorf("vector element %d: %q is not a number", i, string(x))
			}
			dst = append(dst, x...)
		case float64:
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return nil, fmt.Errorf("vector element %d is not a finite number", i)
			}
			dst = strconv.AppendFloat(dst, x, 'g', -1, 64)
		default:
			return nil, fmt.Errorf("vector element %d is %s: vectors hold numbers only, like [0.1,0.2,0.3]", i, jsonTypeName(x))
		}
	}
	return append(dst, ']'), nil
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case bool:
		return "a boolean"
	case string:
		return "a string"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("a %T", v)
}

// appendJSONValue re-encodes a decoded JSON value. Object keys are sorted, as encoding/json does,
// so that json (not jsonb) columns store the same text for the same value; HTML characters are
// not escaped, so json columns store what the caller sent.
func appendJSONValue(dst []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		if v {
			return append(dst, "true"...), nil
		}
		return append(dst, "false"...), nil
	case json.Number:
		if !isJSONNumber([]byte(v)) {
			return nil, fmt.Errorf("%q is not a JSON number", string(v))
		}
		return append(dst, v...), nil
	case string:
		return AppendString(dst, v), nil
	case float64:
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errors.New("NaN and infinities are not JSON numbers")
		}
		return strconv.AppendFloat(dst, v, 'g', -1, 64), nil
	case int:
		return strconv.AppendInt(dst, int64(v), 10), nil
	case int64:
		return strconv.AppendInt(dst, v, 10), nil
	case []any:
		dst = append(dst, '[')
		for i, x := range v {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = appendJSONValue(dst, x); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = appendJSONValue(dst, v[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("unsupported value of Go type %T: decode parameters with encoding/json (UseNumber)", v)
}
