package pgjson

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

func decodeParam(t *testing.T, s string) any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

// bindParam is what cairn does with a parameter: describe the statement only when a parameter
// needs its type, and otherwise let the server infer it from the text.
func bindParam(t *testing.T, pg *pgconn.PgConn, enc *Encoder, sql string, v any) ([]byte, error) {
	t.Helper()
	if !ParamNeedsType(v) {
		return ParamText(v)
	}
	sd, err := pg.Prepare(context.Background(), "", sql, nil)
	if err != nil {
		t.Fatalf("describe %s: %v", sql, err)
	}
	if len(sd.ParamOIDs) != 1 {
		t.Fatalf("describe %s: %d parameters", sql, len(sd.ParamOIDs))
	}
	return enc.ParamTextFor(sd.ParamOIDs[0], v)
}

func TestParamRoundTrip(t *testing.T) {
	conn, enc := newVectorDB(t)
	pg := conn.PgConn()

	cases := []struct {
		typ   string // the column's type
		param string // the JSON the caller sent
		want  string // SQL for the value the server must end up with
	}{
		{"bigint", `50000`, `50000`},
		{"bigint", `-9223372036854775808`, `-9223372036854775808`},
		{"integer", `50000`, `50000`},
		{"numeric", `50000`, `50000`},
		{"numeric", `12.345678901234567890123`, `12.345678901234567890123`},
		{"numeric", `1.5e3`, `1500`},
		{"double precision", `1.5e-7`, `1.5e-7`},
		{"bigint", `null`, `NULL`},
		{"boolean", `true`, `true`},
		{"boolean", `false`, `false`},
		{"text", `true`, `'true'`},
		{"text", `"he said \"hi\"\n\\ 😀"`, `E'he said "hi"\n\\ 😀'`},
		{"text", `""`, `''`}, // empty, not NULL
		{"text", `null`, `NULL`},
		{"uuid", `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`, `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'`},
		{"timestamptz", `"2026-11-23T12:13:27.123456Z"`, `'2026-11-23 12:13:27.123456+00'`},
		{"timestamptz", `"2026-11-23T17:43:27+05:30"`, `'2026-11-23 12:13:27+00'`},
		{"date", `"2026-11-23"`, `'2026-11-23'`},
		{"jsonb", `"{\"a\": [1, 2]}"`, `'{"a":[1,2]}'`},
		{"jsonb", `{"b": [1, 2.50], "a": "x<y", "c": null, "d": {"e": true}}`, `'{"a":"x<y","b":[1,2.50],"c":null,"d":{"e":true}}'`},
		{"json", `{"b": 1, "a": "x<y&z"}`, `'{"a":"x<y&z","b":1}'`},
		{"jsonb", `[1, "a", {"b": null}, [true]]`, `'[1,"a",{"b":null},[true]]'`},
		{"json", `[1, "a"]`, `'[1,"a"]'`},
		{"jsonb", `[]`, `'[]'`},
		{"integer[]", `[1, 2, null, 3]`, `'{1,2,NULL,3}'`},
		{"integer[]", `[[1, 2], [3, 4]]`, `'{{1,2},{3,4}}'`},
		{"integer[]", `[]`, `'{}'`},
		{"bigint[]", `[9007199254740993]`, `'{9007199254740993}'`},
		{"text[]", `["a\"b", "c,d", "back\\slash", null, "NULL", "", "{x}", " sp ", "é😀"]`,
			`ARRAY['a"b', 'c,d', E'back\\slash', NULL, 'NULL', '', '{x}', ' sp ', 'é😀']`},
		{"text[]", `[["a", "b"], ["c", null]]`, `'{{a,b},{c,NULL}}'`},
		{"boolean[]", `[true, false, null]`, `'{t,f,NULL}'`},
		{"numeric[]", `[1.5, 12345678901234567890.123]`, `'{1.5,12345678901234567890.123}'`},
		{"uuid[]", `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]`, `'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'`},
		{"timestamptz[]", `["2026-11-23T12:13:27Z", null]`, `ARRAY['2026-11-23 12:13:27+00'::timestamptz, NULL]`},
		{"jsonb[]", `[{"a": 1}, [1, "x\"y"], 3, null, "\"s\""]`, `ARRAY['{"a":1}'::jsonb, '[1,"x\"y"]', '3', NULL, '"s"']`},
		{"box[]", `["((1,2),(3,4))", "((0,0),(1,1))"]`, `ARRAY[box '((1,2),(3,4))', box '((0,0),(1,1))']`},
		{"vector(3)", `[1, 2.5, 3]`, `'[1,2.5,3]'`},
		{"halfvec(3)", `[1, 2.5, -3]`, `'[1,2.5,-3]'`},
		{"text", `["a", 1, {"b": null}]`, `'["a",1,{"b":null}]'`}, // arrays into text stay JSON
	}

	var cols []string
	for i, c := range cases {
		cols = append(cols, "c"+strconv.Itoa(i)+" "+c.typ)
	}
	mustExec(t, pg, "CREATE TABLE p ("+strings.Join(cols, ", ")+")")

	for i, c := range cases {
		col := "c" + strconv.Itoa(i)
		v := decodeParam(t, c.param)
		// Comparing text forms works for every type, json included (it has no = operator).
		check := func(name, sql string) {
			t.Helper()
			text, err := bindParam(t, pg, enc, sql, v)
			if err != nil {
				t.Errorf("%s %s %s: %v", name, c.typ, c.param, err)
				return
			}
			_, got, err := exec(t, pg, sql, text)
			if err != nil {
				t.Errorf("%s %s %s (bound as %q): %v", name, c.typ, c.param, text, err)
				return
			}
			if string(got) != "t" {
				t.Errorf("%s %s %s (bound as %q): server value differs from %s", name, c.typ, c.param, text, c.want)
			}
		}
		// An INSERT lets the server infer the parameter's type from the column, as cairn relies on.
		check("insert", "INSERT INTO p ("+col+") VALUES ($1) RETURNING "+col+"::text IS NOT DISTINCT FROM ("+c.want+")::"+c.typ+"::text")
		check("select", "SELECT $1::"+c.typ+"::text IS NOT DISTINCT FROM ("+c.want+")::"+c.typ+"::text")

		// With the type known, every value binds as it does without it.
		if !ParamNeedsType(v) {
			sd, err := pg.Prepare(context.Background(), "", "SELECT $1::"+c.typ, nil)
			if err != nil {
				t.Fatal(err)
			}
			a, errA := ParamText(v)
			b, errB := enc.ParamTextFor(sd.ParamOIDs[0], v)
			if string(a) != string(b) || (a == nil) != (b == nil) || (errA == nil) != (errB == nil) {
				t.Errorf("%s %s: ParamText %q, %v but ParamTextFor %q, %v", c.typ, c.param, a, errA, b, errB)
			}
		}
	}

	// = ANY($1) is the usual way to pass a list; the server describes $1 as integer[].
	text, err := bindParam(t, pg, enc, "SELECT 2 = ANY($1) AND 5 <> ALL($1)", decodeParam(t, `[1, 2, 3]`))
	if err != nil {
		t.Fatal(err)
	}
	if _, got, err := exec(t, pg, "SELECT 2 = ANY($1) AND 5 <> ALL($1)", text); err != nil || string(got) != "t" {
		t.Errorf("= ANY($1) with %q: %s, %v", text, got, err)
	}
}

func TestParamErrors(t *testing.T) {
	enc := NewEncoder(pgtype.NewMap())
	enc.SetExtensionOIDs(90001, 90002, 90003)
	cases := []struct {
		oid   uint32
		param string
		want  string
	}{
		{pgtype.Int4OID, `[1, 2]`, "JSON arrays bind to array, json/jsonb or vector parameters, not to integer"},
		{pgtype.UUIDOID, `["x"]`, "not to uuid"},
		{pgtype.Int4rangeOID, `[1, 5]`, "not to int4range"},
		{pgtype.Int4OID, `{"a": 1}`, "JSON objects bind to json/jsonb or text parameters, not to integer"},
		{pgtype.Int4ArrayOID, `{"a": 1}`, "not to integer[]"},
		{90001, `[1, "2"]`, "vector element 1 is a string"},
		{90001, `[1, [2]]`, "vector element 1 is an array"},
		{90003, `[1, 2]`, "sparsevec parameters take pgvector's text form"},
		{pgtype.TextOID, `"a\u0000b"`, "NUL character"},
		{pgtype.TextArrayOID, `["ok", "a\u0000b"]`, "element 1: string contains a NUL character"},
		{pgtype.Int4ArrayOID, `[[1], [2, [true, [1, "\u0000"]]]]`, "element 1: element 1: element 1: element 1: string contains a NUL"},
	}
	for _, c := range cases {
		_, err := enc.ParamTextFor(c.oid, decodeParam(t, c.param))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParamTextFor(%d, %s) = %v, want an error containing %q", c.oid, c.param, err, c.want)
		}
	}
	if _, err := ParamText(struct{}{}); err == nil {
		t.Error("ParamText(struct{}{}): want an error")
	}
	if _, err := ParamText(json.Number("1x")); err == nil {
		t.Error("ParamText(json.Number(1x)): want an error")
	}
}

func TestParamTextGuesses(t *testing.T) {
	cases := []struct{ param, want string }{
		{`null`, "<nil>"},
		{`""`, ""},
		{`12.50`, "12.50"},
		{`[1, "a b", null, [true]]`, `{1,"a b",NULL,{true}}`},
		{`[1, {"a": "b"}]`, `[1,{"a":"b"}]`}, // an object anywhere: JSON text
		{`{"z": "\u2028", "a": [1]}`, `{"a":[1],"z":"\u2028"}`},
	}
	for _, c := range cases {
		v := decodeParam(t, c.param)
		got, err := ParamText(v)
		s := string(got)
		if got == nil {
			s = "<nil>"
		}
		if err != nil || s != c.want {
			t.Errorf("ParamText(%s) = %q, %v; want %q", c.param, s, err, c.want)
		}
	}
	if ParamNeedsType(decodeParam(t, `{"a": 1}`)) || !ParamNeedsType(decodeParam(t, `[]`)) || ParamNeedsType(nil) {
		t.Error("ParamNeedsType: only JSON arrays need a type")
	}
}
