package sqlguard

import (
	"reflect"
	"testing"
)

// Statements that differ only in literal values share a shape, and the verdict kept for one is
// the verdict a full check gives the other, with the other's own text.
func TestShapeVerdictsMatchAFullCheck(t *testing.T) {
	for _, c := range []struct{ a, b string }{
		{"SELECT id, name FROM bench WHERE id = 1", "SELECT id, name FROM bench WHERE id = 123456"},
		{"SELECT * FROM t WHERE name = 'alice' AND score > 1.5", "SELECT * FROM t WHERE name = 'bob''s' AND score > 2e9"},
		{"  select 1 ;  ", "select 42;"},
		{"SELECT 1 -- note\n;", "SELECT 2 -- another note\n;"},
		{"/* head */ SELECT x FROM t WHERE x = E'a\\n'", "/* other */ SELECT x FROM t WHERE x = E'b'"},
		{"INSERT INTO t (a, b) VALUES (1, 'x') RETURNING id", "INSERT INTO t (a, b) VALUES (2, 'a much longer value than before') RETURNING id"},
		{"DELETE FROM t WHERE created_at < now() - interval '7 days'", "DELETE FROM t WHERE created_at < now() - interval '30 days'"},
		{"SELECT $1::int + 1", "SELECT $1::int + 2"},
		{"; /* lead */ SELECT 1 ;; ", ";SELECT 2;;"},
		{"SELECT 'a;b' -- x; y\n", "SELECT ';' -- z\n"},
	} {
		sa, okA := ShapeOf(c.a)
		sb, okB := ShapeOf(c.b)
		if !okA || !okB || sa.Key != sb.Key {
			t.Errorf("%q and %q: shapes %v/%v, same key %v", c.a, c.b, okA, okB, sa.Key == sb.Key)
			continue
		}
		for _, check := range []func(string) (*Statement, error){CheckQuery, CheckExecute} {
			stA, errA := check(c.a)
			want, errB := check(c.b)
			if errA != nil || errB != nil {
				if (errA == nil) != (errB == nil) {
					t.Errorf("%q / %q: verdicts differ: %v / %v", c.a, c.b, errA, errB)
				}
				continue
			}
			v, ok := Keep(sa, stA)
			if !ok {
				t.Errorf("%q: the verdict cannot be kept", c.a)
				continue
			}
			got := v.For(sb)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%q from %q's verdict:\n got  %+v\n want %+v", c.b, c.a, got, want)
			}
		}
	}
}

// Statements whose verdict can depend on a literal's value have no shape.
func TestNoShapeWhereLiteralsMatter(t *testing.T) {
	for _, sql := range []string{
		"EXPLAIN (ANALYZE 0) DELETE FROM t",
		"SELECT nextval('public.allowed_seq')",
		`SELECT "setval"('s', 1)`,
		"SELECT pg_notify('cairn_events', 'x')",
		"SELECT 1" + string(rune(0)),
	} {
		if _, ok := ShapeOf(sql); ok {
			t.Errorf("%q has a shape", sql)
		}
	}
	a, _ := ShapeOf("SELECT 1")
	b, _ := ShapeOf("SELECT a")
	c, _ := ShapeOf("select 1")
	if a.Key == b.Key || a.Key == c.Key {
		t.Error("different statements share a shape")
	}
}
