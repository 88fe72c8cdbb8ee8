package pgjson

import (
	"encoding/json"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"
)

// sampleResult is a 1,000-row result of (int8, text, timestamptz, numeric, bool, jsonb) as the
// server sends it in text format, with a few NULLs and escapes.
func sampleResult() (oids []uint32, keys [][]byte, rows [][][]byte) {
	oids = []uint32{pgtype.Int8OID, pgtype.TextOID, pgtype.TimestamptzOID, pgtype.NumericOID, pgtype.BoolOID, pgtype.JSONBOID}
	for _, n := range []string{"id", "name", "created_at", "amount", "active", "attrs"} {
		keys = append(keys, append(AppendString(nil, n), ':'))
	}
	for i := range 1000 {
		name := "customer " + strconv.Itoa(i)
		if i%10 == 0 {
			name += ` "VIP"`
		}
		row := [][]byte{
			strconv.AppendInt(nil, int64(i)*7919, 10),
			[]byte(name),
			[]byte("2026-11-23 12:13:" + strconv.Itoa(10+i%50) + ".123456+00"),
			[]byte(strconv.Itoa(i*13) + "." + strconv.Itoa(10+i%90)),
			{"tf"[i%2]},
			[]byte(`{"id": ` + strconv.Itoa(i) + `, "tags": ["a", "b"], "name": "x"}`),
		}
		if i%7 == 0 {
			row[3] = nil
		}
		rows = append(rows, row)
	}
	return oids, keys, rows
}

// appendRows writes rows the way the server's result writer does.
func appendRows(dst []byte, enc *Encoder, oids []uint32, keys [][]byte, rows [][][]byte) []byte {
	dst = append(dst, '[')
	for r, row := range rows {
		if r > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		for i, v := range row {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, keys[i]...)
			dst = enc.AppendValue(dst, oids[i], v)
		}
		dst = append(dst, '}')
	}
	return append(dst, ']')
}

func BenchmarkAppendRow(b *testing.B) {
	enc := NewEncoder(pgtype.NewMap())
	oids, keys, rows := sampleResult()
	buf := appendRows(nil, enc, oids, keys, rows)
	if !json.Valid(buf) {
		b.Fatalf("invalid JSON: %.200s", buf)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	b.ResetTimer()
	for b.Loop() {
		buf = appendRows(buf[:0], enc, oids, keys, rows)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(rows)), "ns/row")
}

func BenchmarkAppendValue(b *testing.B) {
	enc := NewEncoder(pgtype.NewMap())
	for _, c := range allocCases {
		b.Run(c.name, func(b *testing.B) {
			text := []byte(c.text)
			var buf []byte
			b.ReportAllocs()
			for b.Loop() {
				buf = enc.AppendValue(buf[:0], c.oid, text)
			}
		})
	}
}

var allocCases = []struct {
	name string
	oid  uint32
	text string
}{
	{"int8", pgtype.Int8OID, "1234567890"},
	{"text", pgtype.TextOID, `a "quoted" text with é and ` + "\u2028"},
	{"timestamptz", pgtype.TimestamptzOID, "2026-11-23 12:13:27.123456+05:30"},
	{"numeric", pgtype.NumericOID, "12345.678"},
	{"float8", pgtype.Float8OID, "1.5e-07"},
	{"jsonb", pgtype.JSONBOID, `{"a": [1, 2, {"b": "c"}]}`},
	{"bytea", pgtype.ByteaOID, `\x` + "00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc00ff10aabbcc"},
	{"int4[]", pgtype.Int4ArrayOID, "{{1,2,NULL},{3,4,5}}"},
	{"text[]", pgtype.TextArrayOID, `{"a \"b\"",c,NULL,"d\\e"}`},
	{"jsonb[]", pgtype.JSONBArrayOID, `{"{\"a\": 1}","[1, \"x\"]"}`},
	{"timestamptz[]", pgtype.TimestamptzArrayOID, `{"2026-11-23 12:13:27+00","2026-11-23 12:13:28+00"}`},
	{"unknown", 99999, "happy"},
}

// TestAppendValueAllocs guards the hot path: once the buffer has grown, writing a value of any
// common type allocates nothing.
func TestAppendValueAllocs(t *testing.T) {
	enc := NewEncoder(pgtype.NewMap())
	for _, c := range allocCases {
		text := []byte(c.text)
		buf := enc.AppendValue(nil, c.oid, text)
		if !json.Valid(buf) {
			t.Fatalf("%s: invalid JSON %s", c.name, buf)
		}
		if n := testing.AllocsPerRun(100, func() { buf = enc.AppendValue(buf[:0], c.oid, text) }); n != 0 {
			t.Errorf("%s: %v allocations per value, want 0", c.name, n)
		}
	}
}
