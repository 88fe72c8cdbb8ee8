package pgjson

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

func TestAppendValue(t *testing.T) {
	conn, enc := newVectorDB(t)
	pg := conn.PgConn()
	mustExec(t, pg, `CREATE EXTENSION citext; CREATE TYPE mood AS ENUM ('happy', 'sad')`)

	cases := []struct {
		name  string
		setup string // session settings; every case starts from UTC and ISO
		expr  string
		want  string
	}{
		{"null", "", `NULL::int4`, `null`},
		{"null text", "", `NULL::text`, `null`},
		{"true", "", `true`, `true`},
		{"false", "", `false`, `false`},

		{"int2", "", `(-32768)::int2`, `-32768`},
		{"int4", "", `2147483647::int4`, `2147483647`},
		{"int8 zero", "", `0::int8`, `0`},
		{"int8 2^53", "", `9007199254740992::int8`, `9007199254740992`},
		{"int8 -2^53", "", `(-9007199254740992)::int8`, `-9007199254740992`},
		{"int8 2^53+1", "", `9007199254740993::int8`, `"9007199254740993"`},
		{"int8 -2^53-1", "", `(-9007199254740993)::int8`, `"-9007199254740993"`},
		{"int8 max", "", `9223372036854775807::int8`, `"9223372036854775807"`},
		{"int8 16 digits under 2^53", "", `1000000000000000::int8`, `1000000000000000`},
		{"oid", "", `4294967295::oid`, `4294967295`},
		{"xid", "", `'123'::xid`, `123`},
		{"xid8 huge", "", `'18446744073709551615'::xid8`, `"18446744073709551615"`},

		{"numeric", "", `12.34::numeric`, `12.34`},
		{"numeric trailing zeros", "", `0.1000::numeric`, `0.1000`},
		{"numeric negative integer", "", `(-5)::numeric`, `-5`},
		{"numeric zero scale 4", "", `0.0000::numeric`, `0.0000`},
		{"numeric 15 digits", "", `123456789012345::numeric`, `123456789012345`},
		{"numeric 16 digits", "", `1234567890123456::numeric`, `"1234567890123456"`},
		{"numeric 15 fraction digits", "", `0.123456789012345::numeric`, `0.123456789012345`},
		{"numeric 16 fraction digits", "", `0.1234567890123456::numeric`, `"0.1234567890123456"`},
		{"numeric 15 mixed", "", `-12345678.9012345::numeric`, `-12345678.9012345`},
		{"numeric 16 mixed", "", `12345678.90123456::numeric`, `"12345678.90123456"`},
		{"numeric small", "", `0.00001::numeric`, `0.00001`},
		{"numeric 1e20", "", `1e20::numeric`, `"100000000000000000000"`},
		{"numeric NaN", "", `'NaN'::numeric`, `"NaN"`},
		{"numeric Infinity", "", `'Infinity'::numeric`, `"Infinity"`},
		{"numeric -Infinity", "", `'-Infinity'::numeric`, `"-Infinity"`},

		{"float8", "", `1.5::float8`, `1.5`},
		{"float8 exponent", "", `1e100::float8`, `1e+100`},
		{"float8 small", "", `1.5e-7::float8`, `1.5e-07`},
		{"float8 -0", "", `'-0'::float8`, `-0`},
		{"float8 NaN", "", `'NaN'::float8`, `"NaN"`},
		{"float8 Infinity", "", `'Infinity'::float8`, `"Infinity"`},
		{"float8 -Infinity", "", `'-Infinity'::float8`, `"-Infinity"`},
		{"float4", "", `1.1::float4`, `1.1`},
		{"float8 extra_float_digits 0", "SET extra_float_digits = 0", `0.1::float8`, `0.1`},

		{"text escapes", "", `E'a"b\\c\nd\te\rf\x01g\x1f'`, `"a\"b\\c\nd\te\rf\u0001g\u001f"`},
		{"text emoji", "", `'héllo 😀'::text`, `"héllo 😀"`},
		{"text U+2028 U+2029", "", `E'x\u2028y\u2029z'`, `"x\u2028y\u2029z"`},
		{"text empty", "", `''::text`, `""`},
		{"varchar", "", `'v'::varchar(5)`, `"v"`},
		{"bpchar pads", "", `'ab'::char(4)`, `"ab  "`},
		{"name", "", `'pg_class'::name`, `"pg_class"`},
		{"char", "", `'x'::"char"`, `"x"`},
		{"citext", "", `'MiXeD'::citext`, `"MiXeD"`},
		{"enum", "", `'happy'::mood`, `"happy"`},
		{"unknown literal", "", `'lit'`, `"lit"`},

		{"json verbatim", "", `'{"a": [1, 2],  "b":"x"}'::json`, `{"a": [1, 2],  "b":"x"}`},
		{"jsonb", "", `'{"b":1,"a":"x\"y"}'::jsonb`, `{"a": "x\"y", "b": 1}`},
		{"jsonb scalar", "", `'"s"'::jsonb`, `"s"`},
		{"jsonb null", "", `'null'::jsonb`, `null`},
		{"jsonpath", "", `'$.a'::jsonpath`, `"$.\"a\""`},
		{"uuid", "", `'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid`, `"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"`},

		{"timestamptz UTC", "", `'2026-11-23 12:13:27.123456+00'::timestamptz`, `"2026-11-23T12:13:27.123456Z"`},
		{"timestamptz whole second", "", `'2026-11-23 12:13:27+00'::timestamptz`, `"2026-11-23T12:13:27Z"`},
		{"timestamptz Kolkata", "SET TIME ZONE 'Asia/Kolkata'", `'2026-11-23 12:13:27.5+00'::timestamptz`, `"2026-11-23T17:43:27.5+05:30"`},
		{"timestamptz St Johns", "SET TIME ZONE 'America/St_Johns'", `'2026-01-15 12:00:00+00'::timestamptz`, `"2026-01-15T08:30:00-03:30"`},
		{"timestamptz whole-hour offset", "SET TIME ZONE 'Asia/Karachi'", `'2026-11-23 12:00:00+00'::timestamptz`, `"2026-11-23T17:00:00+05:00"`},
		{"timestamptz offset with seconds", "SET TIME ZONE 'America/St_Johns'", `'1890-01-01 00:00'::timestamptz`, `"1890-01-01 00:00:00-03:30:52"`},
		{"timestamptz infinity", "", `'infinity'::timestamptz`, `"infinity"`},
		{"timestamptz -infinity", "", `'-infinity'::timestamptz`, `"-infinity"`},
		{"timestamptz BC", "", `'0044-03-15 12:00:00+00 BC'::timestamptz`, `"0044-03-15 12:00:00+00 BC"`},
		{"timestamptz year 10000", "", `'10000-01-01 00:00+00'::timestamptz`, `"10000-01-01 00:00:00+00"`},
		{"timestamptz DateStyle SQL", "SET DateStyle = 'SQL, DMY'", `'2026-11-23 12:13:27+00'::timestamptz`, `"23/11/2026 12:13:27 UTC"`},
		{"timestamp", "", `'2026-11-23 12:13:27.123456'::timestamp`, `"2026-11-23T12:13:27.123456"`},
		{"timestamp BC", "", `'0044-03-15 12:00:00 BC'::timestamp`, `"0044-03-15 12:00:00 BC"`},
		{"timestamp infinity", "", `'infinity'::timestamp`, `"infinity"`},
		{"date", "", `'2026-11-23'::date`, `"2026-11-23"`},
		{"date infinity", "", `'infinity'::date`, `"infinity"`},
		{"date -infinity", "", `'-infinity'::date`, `"-infinity"`},
		{"date BC", "", `'0044-03-15 BC'::date`, `"0044-03-15 BC"`},
		{"time", "", `'12:13:27.5'::time`, `"12:13:27.5"`},
		{"timetz", "", `'12:13:27+05:30'::timetz`, `"12:13:27+05:30"`},
		{"interval", "", `'1 day 02:03:04'::interval`, `"1 day 02:03:04"`},

		{"bytea", "", `'\x0a0b'::bytea`, `"Cgs="`},
		{"bytea empty", "", `''::bytea`, `""`},
		{"bytea three bytes", "", `'\x00ff10'::bytea`, `"AP8Q"`},
		{"bytea long", "", `decode(repeat('00ff10', 100) || 'ab', 'hex')`, `"` + strings.Repeat("AP8Q", 100) + `qw=="`},
		{"bytea escape output", "SET bytea_output = 'escape'", `'\x5c00ff41'::bytea`, `"XAD/QQ=="`},

		{"int4[] with NULL", "", `'{1,NULL,3}'::int4[]`, `[1,null,3]`},
		{"int4[] 2-D", "", `'{{1,2},{3,4}}'::int4[]`, `[[1,2],[3,4]]`},
		{"int4[] 3-D", "", `'{{{1},{2}},{{3},{NULL}}}'::int4[]`, `[[[1],[2]],[[3],[null]]]`},
		{"int4[] bounds", "", `'[0:1]={1,2}'::int4[]`, `[1,2]`},
		{"int4[] 2-D bounds", "", `'[0:1][2:3]={{1,2},{3,4}}'::int4[]`, `[[1,2],[3,4]]`},
		{"int4[] empty", "", `'{}'::int4[]`, `[]`},
		{"int8[] past 2^53", "", `ARRAY[9007199254740992, 9007199254740993]::int8[]`, `[9007199254740992,"9007199254740993"]`},
		{"text[] quoting", "", `ARRAY['a"b', 'c,d', '{x}', 'NULL', NULL, '', E'a\\b', ' sp', 'plain', 'null']`,
			`["a\"b","c,d","{x}","NULL",null,"","a\\b"," sp","plain","null"]`},
		{"text[] unicode", "", `ARRAY[E'x\u2028', '😀', E'line\nbreak']`, `["x\u2028","😀","line\nbreak"]`},
		{"varchar[] 2-D", "", `'{{a,b},{c,NULL}}'::varchar[]`, `[["a","b"],["c",null]]`},
		{"jsonb[]", "", `ARRAY['{"a": 1}'::jsonb, '"x\"y"', 'null', '[1, "}"]']`, `[{"a": 1},"x\"y",null,[1, "}"]]`},
		{"json[]", "", `ARRAY['{"a":"b\\c"}'::json]`, `[{"a":"b\\c"}]`},
		{"uuid[]", "", `ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid, NULL]`, `["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",null]`},
		{"timestamptz[]", "SET TIME ZONE 'Asia/Kolkata'", `ARRAY['2026-11-23 12:13:27.123456+00'::timestamptz, 'infinity', NULL]`,
			`["2026-11-23T17:43:27.123456+05:30","infinity",null]`},
		{"timestamp[]", "", `ARRAY['2026-11-23 12:13:27'::timestamp]`, `["2026-11-23T12:13:27"]`},
		{"date[]", "", `ARRAY['2026-11-23'::date, '0044-03-15 BC', 'infinity']`, `["2026-11-23","0044-03-15 BC","infinity"]`},
		{"numeric[]", "", `'{1.5,NaN,12345678901234567890,-0.25}'::numeric[]`, `[1.5,"NaN","12345678901234567890",-0.25]`},
		{"float8[]", "", `'{1.5,NaN,-Infinity,1e100}'::float8[]`, `[1.5,"NaN","-Infinity",1e+100]`},
		{"bool[]", "", `'{t,f,NULL}'::bool[]`, `[true,false,null]`},
		{"bytea[]", "", `ARRAY['\x0a0b'::bytea, NULL]`, `["Cgs=",null]`},
		{"box[] semicolon delimiter", "", `ARRAY[box '((1,2),(3,4))', box '((0,0),(1,1))']`, `["(3,4),(1,2)","(1,1),(0,0)"]`},
		{"interval[]", "", `ARRAY['1 day'::interval]`, `["1 day"]`},
		{"enum[] unknown array type", "", `ARRAY['happy'::mood, 'sad']`, `"{happy,sad}"`},

		{"vector", "", `'[1,2.5,3]'::vector`, `[1,2.5,3]`},
		{"vector exponents", "", `'[1e20,0.000001,-2]'::vector`, `[1e+20,1e-06,-2]`},
		{"halfvec", "", `'[1,2.5,3]'::halfvec`, `[1,2.5,3]`},
		{"sparsevec", "", `'{1:1.5,3:2}/5'::sparsevec`, `"{1:1.5,3:2}/5"`},
		{"vector[]", "", `ARRAY['[1,2]'::vector]`, `"{\"[1,2]\"}"`},

		{"inet", "", `'10.0.0.1/8'::inet`, `"10.0.0.1/8"`},
		{"cidr", "", `'10.0.0.0/8'::cidr`, `"10.0.0.0/8"`},
		{"macaddr", "", `'08:00:2b:01:02:03'::macaddr`, `"08:00:2b:01:02:03"`},
		{"money", "", `12::money`, `"$12.00"`},
		{"point", "", `point(1,2)`, `"(1,2)"`},
		{"box", "", `box '((1,2),(3,4))'`, `"(3,4),(1,2)"`},
		{"tsvector", "", `'a fat cat'::tsvector`, `"'a' 'cat' 'fat'"`},
		{"xml", "", `'<a x="1"/>'::xml`, `"<a x=\"1\"/>"`},
		{"bit", "", `B'101'`, `"101"`},
		{"record", "", `ROW(1, 'a b')`, `"(1,\"a b\")"`},
		{"int4range", "", `'[1,5)'::int4range`, `"[1,5)"`},
		{"int2vector", "", `'1 2'::int2vector`, `"1 2"`},
		{"regclass", "", `'pg_class'::regclass`, `"pg_class"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mustExec(t, pg, "RESET ALL; SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, MDY'")
			if c.setup != "" {
				mustExec(t, pg, c.setup)
			}
			oid, val, err := exec(t, pg, "SELECT "+c.expr)
			if err != nil {
				t.Fatalf("SELECT %s: %v", c.expr, err)
			}
			got := enc.AppendValue(nil, oid, val)
			if !json.Valid(got) {
				t.Fatalf("invalid JSON %s (oid %d, text %q)", got, oid, val)
			}
			if string(got) != c.want {
				t.Errorf("got %s, want %s (oid %d, text %q)", got, c.want, oid, val)
			}
		})
	}
}

// TestInvalidUTF8FromServer reads bytes that are not UTF-8, which a SQL_ASCII database passes
// through to a UTF8 client unconverted.
func TestInvalidUTF8FromServer(t *testing.T) {
	conn := newTestDB(t, "ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	enc := NewEncoder(pgtype.NewMap())
	for _, c := range []struct{ expr, want string }{
		{`convert_from('\x61ff62'::bytea, 'SQL_ASCII')`, `"a\ufffdb"`},
		{`convert_from('\x22c322'::bytea, 'SQL_ASCII')::json`, `"\"\ufffd\""`}, // a json value, not UTF-8: a string instead
		{`ARRAY[convert_from('\x61ff62'::bytea, 'SQL_ASCII')]`, `["a\ufffdb"]`},
	} {
		oid, val, err := exec(t, conn.PgConn(), "SELECT "+c.expr)
		if err != nil {
			t.Fatalf("SELECT %s: %v", c.expr, err)
		}
		got := enc.AppendValue(nil, oid, val)
		if !json.Valid(got) || string(got) != c.want {
			t.Errorf("%s: got %s, want %s (text %q)", c.expr, got, c.want, val)
		}
	}
}

// TestAppendValueMalformed feeds text of unexpected shape, which must still come out as valid
// JSON (a string), never as broken output.
func TestAppendValueMalformed(t *testing.T) {
	enc := NewEncoder(nil)
	enc.SetExtensionOIDs(90001, 90002, 90003)
	cases := []struct {
		oid  uint32
		text string
		want string
	}{
		{pgtype.Int4OID, "12a", `"12a"`},
		{pgtype.Int4OID, "", `""`},
		{pgtype.Int4OID, "-", `"-"`},
		{pgtype.Int4OID, "007", `"007"`},
		{pgtype.Int8OID, "9007199254740999", `"9007199254740999"`},
		{pgtype.BoolOID, "yes", `"yes"`},
		{pgtype.NumericOID, "1.", `"1."`},
		{pgtype.NumericOID, ".5", `".5"`},
		{pgtype.NumericOID, "1e5", `"1e5"`},
		{pgtype.NumericOID, "0." + strings.Repeat("0", 300) + "1", `"0.` + strings.Repeat("0", 300) + `1"`},
		{pgtype.Float8OID, "1.5e", `"1.5e"`},
		{pgtype.Float8OID, "+1", `"+1"`},
		{pgtype.TimestamptzOID, "2026-11-23 12:13:27.+00", `"2026-11-23 12:13:27.+00"`},
		{pgtype.TimestamptzOID, "2026-11-23 12:13:27", `"2026-11-23 12:13:27"`},
		{pgtype.TimestamptzOID, "2026-11-23 12:13:27+5", `"2026-11-23 12:13:27+5"`},
		{pgtype.TimestampOID, "2026-11-23 12:13:27+00", `"2026-11-23 12:13:27+00"`},
		{pgtype.ByteaOID, `\x0`, `"\\x0"`},
		{pgtype.ByteaOID, `\xzz`, `"\\xzz"`},
		{pgtype.ByteaOID, `a\9`, `"a\\9"`},
		{pgtype.Int4ArrayOID, "{1,2", `"{1,2"`},
		{pgtype.Int4ArrayOID, "{1,,2}", `"{1,,2}"`},
		{pgtype.Int4ArrayOID, "{1,2}}", `"{1,2}}"`},
		{pgtype.Int4ArrayOID, "[0:1]", `"[0:1]"`},
		{pgtype.TextArrayOID, `{"abc}`, `"{\"abc}"`},
		{pgtype.TextArrayOID, `{"a\"}`, `"{\"a\\\"}"`},
		{pgtype.JSONOID, "\xff", `"\ufffd"`},
		{90001, "[1,2,]", `"[1,2,]"`},
		{90001, "[]", `"[]"`},
		{90001, "[NaN]", `"[NaN]"`},
		{90003, "{1:1}/2", `"{1:1}/2"`},
		{123456, "x", `"x"`},
	}
	for _, c := range cases {
		got := enc.AppendValue([]byte("prefix "), c.oid, []byte(c.text))
		want := "prefix " + c.want
		if string(got) != want || !json.Valid(got[len("prefix "):]) {
			t.Errorf("oid %d %q: got %s, want %s", c.oid, c.text, got, want)
		}
	}
}

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"plain", `"plain"`},
		{"q\"b\\s/", `"q\"b\\s/"`},
		{"\x00\x07\b\f\n\r\t\x1f\x7f", `"\u0000\u0007\b\f\n\r\t\u001f` + "\x7f" + `"`},
		{"a\xffb", `"a\ufffdb"`},
		{"\xe2\x82", `"\ufffd\ufffd"`},           // a truncated sequence: each byte replaced
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // an encoded surrogate is not UTF-8
		{"x\u2028y\u2029", `"x\u2028y\u2029"`},
		{"é😀€", `"é😀€"`},
		{"<&>", `"<&>"`},
	}
	for _, c := range cases {
		got := AppendString(nil, c.in)
		if string(got) != c.want {
			t.Errorf("AppendString(%q) = %s, want %s", c.in, got, c.want)
		}
		if !json.Valid(got) {
			t.Errorf("AppendString(%q) = %s: invalid JSON", c.in, got)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\xff\xfe", "\u2028", "😀\x00", "\xe2\x82"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendString(nil, s)
		var back string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("AppendString(%q) = %s: %v", s, got, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); strings.ToValidUTF8(back, "\ufffd") != back || (back != s && want == s) {
			t.Fatalf("AppendString(%q) round-trips to %q", s, back)
		}
	})
}

// TestConcurrentUse shares one encoder between goroutines, as the server does.
func TestConcurrentUse(t *testing.T) {
	enc := NewEncoder(pgtype.NewMap())
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			var buf []byte
			for range 1000 {
				buf = enc.AppendValue(buf[:0], pgtype.TextArrayOID, []byte(`{"a\"b",NULL,c}`))
				if string(buf) != `["a\"b",null,"c"]` {
					t.Errorf("got %s", buf)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestPlainWord(t *testing.T) {
	check := func(w uint64) {
		want := true
		for k := range 8 {
			b := byte(w >> (8 * k))
			want = want && b < 0x80 && rawSafe[b]
		}
		if got := plainWord(w); got != want {
			t.Fatalf("plainWord(%#016x) = %v, want %v", w, got, want)
		}
	}
	// Every byte value in every position, against backgrounds that are plain and that borrow.
	for _, bg := range []uint64{0x6161616161616161, 0x2020202020202020, 0x2323232323232323, 0x5d5d5d5d5d5d5d5d, 0x7f7f7f7f7f7f7f7f} {
		for k := range 8 {
			for b := range 256 {
				check(bg&^(0xff<<(8*k)) | uint64(b)<<(8*k))
			}
		}
	}
	x := uint64(0x9e3779b97f4a7c15)
	for range 1 << 20 {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		check(x & 0x7f7f7f7f7f7f7f7f)
		check(x)
	}
}
