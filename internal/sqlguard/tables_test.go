package sqlguard

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// acc renders an Access compactly for comparison: "op schema.table [via]".
func acc(a Access) string {
	s := string(a.Op) + " " + a.Table.String()
	if a.Cascade&CascadeDelete != 0 {
		s += " deletes"
	}
	if a.Cascade&CascadeUpdate != 0 {
		s += " updates(" + strings.Join(a.SetColumns, ",") + ")"
	}
	if a.Cascade&CascadeTruncate != 0 {
		s += " truncates"
	}
	if a.Via != "" {
		s += " [" + a.Via + "]"
	}
	return s
}

func fn(f FuncRef) string {
	s := f.String()
	if f.Restricted != "" {
		s += " restricted"
	}
	if f.Via != "" {
		s += " [" + f.Via + "]"
	}
	return s
}

func TestFootprint(t *testing.T) {
	tests := []struct {
		sql       string
		op        Operation
		accesses  []string
		functions []string
	}{
		// Reads, and every way a read reaches a relation.
		{"SELECT * FROM workflows", OpRead, []string{"read workflows"}, nil},
		{"SELECT * FROM public.secrets", OpRead, []string{"read public.secrets"}, nil},
		{`SELECT * FROM "Public"."Secrets"`, OpRead, []string{"read Public.Secrets"}, nil},
		{"TABLE secrets", OpRead, []string{"read secrets"}, nil},
		{"SELECT * FROM ONLY secrets", OpRead, []string{"read secrets"}, nil},
		{"SELECT w.id FROM workflows w JOIN secrets s ON s.id = w.id", OpRead,
			[]string{"read workflows [a JOIN]", "read secrets [a JOIN]"}, nil},
		{"SELECT * FROM workflows w LEFT JOIN (agents a JOIN secrets s USING (id)) ON true", OpRead,
			[]string{"read workflows [a JOIN]", "read agents [a JOIN]", "read secrets [a JOIN]"}, nil},
		{"SELECT * FROM workflows, secrets", OpRead, []string{"read workflows [a JOIN]", "read secrets [a JOIN]"}, nil},
		{"WITH s AS (SELECT * FROM secrets) SELECT * FROM s", OpRead, []string{`read secrets [a CTE "s"]`}, nil},
		{"WITH secrets AS (SELECT 1 AS x) SELECT * FROM secrets", OpRead, nil, nil},
		{"WITH secrets AS (SELECT 1 AS x) SELECT * FROM public.secrets", OpRead, []string{"read public.secrets"}, nil},
		{"WITH a AS (SELECT * FROM b), b AS (SELECT 1) SELECT * FROM a", OpRead, []string{`read b [a CTE "a"]`}, nil},
		{"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r", OpRead, nil, nil},
		{"WITH x AS (WITH y AS (SELECT * FROM secrets) SELECT * FROM y JOIN agents USING (id)) SELECT * FROM x", OpRead,
			[]string{`read secrets [a CTE "y" in a CTE "x"]`, `read agents [a JOIN in a CTE "x"]`}, nil},
		{"SELECT * FROM (SELECT * FROM secrets) s", OpRead, []string{"read secrets [a subquery]"}, nil},
		{"SELECT * FROM workflows WHERE id IN (SELECT id FROM secrets)", OpRead,
			[]string{"read workflows", "read secrets [a subquery]"}, nil},
		{"SELECT (SELECT max(x) FROM secrets) AS m", OpRead, []string{"read secrets [a subquery]"}, []string{"max [a subquery]"}},
		{"SELECT EXISTS (SELECT 1 FROM secrets)", OpRead, []string{"read secrets [a subquery]"}, nil},
		{"SELECT * FROM workflows w, LATERAL (SELECT * FROM secrets s WHERE s.id = w.id) x", OpRead,
			[]string{"read workflows [a JOIN]", "read secrets [a subquery in a JOIN]"}, nil},
		{"SELECT id FROM workflows UNION SELECT id FROM secrets", OpRead,
			[]string{"read workflows [a UNION]", "read secrets [a UNION]"}, nil},
		{"SELECT id FROM workflows INTERSECT SELECT id FROM secrets", OpRead,
			[]string{"read workflows [an INTERSECT]", "read secrets [an INTERSECT]"}, nil},
		{"SELECT id FROM workflows EXCEPT (SELECT id FROM agents UNION ALL SELECT id FROM secrets)", OpRead,
			[]string{"read workflows [an EXCEPT]", "read agents [a UNION in an EXCEPT]", "read secrets [a UNION in an EXCEPT]"}, nil},
		{"SELECT * FROM secrets TABLESAMPLE SYSTEM (10)", OpRead, []string{"read secrets"}, nil},
		{"SELECT * FROM leak()", OpRead, nil, []string{"leak"}},
		{"SELECT public.leak(1), lower('x'), count(*) FROM workflows", OpRead, []string{"read workflows"}, []string{"public.leak", "lower", "count"}},
		{"SELECT extract(year FROM now())", OpRead, nil, []string{"pg_catalog.extract", "now"}},
		{"SELECT * FROM workflows WHERE id IN (SELECT my.f(id) FROM agents)", OpRead,
			[]string{"read workflows", "read agents [a subquery]"}, []string{"my.f [a subquery]"}},
		{"SELECT query_to_xml('select * from secrets', true, true, '')", OpRead, nil, []string{"query_to_xml restricted"}},
		{"SELECT pg_catalog.table_to_xml('secrets', true, true, '')", OpRead, nil, []string{"pg_catalog.table_to_xml restricted"}},
		{"SELECT * FROM ts_stat('select tsv from secrets')", OpRead, nil, []string{"ts_stat restricted"}},
		{"SELECT public.query_to_xml('x')", OpRead, nil, []string{"public.query_to_xml"}},
		{"SELECT * FROM workflows FOR UPDATE", OpRead, []string{"read workflows"}, nil},
		{"SHOW search_path", OpRead, nil, nil},
		{"VALUES (1), (2)", OpRead, nil, nil},

		// EXPLAIN plans (reads) unless ANALYZE runs the statement.
		{"EXPLAIN SELECT * FROM secrets", OpRead, []string{"read secrets"}, nil},
		{"EXPLAIN DELETE FROM secrets", OpRead, []string{"read secrets"}, nil},
		{"EXPLAIN ANALYZE DELETE FROM secrets", OpWrite, []string{"write secrets deletes"}, nil},
		{"EXPLAIN (ANALYZE false) UPDATE t SET a = 1", OpRead, []string{"read t"}, nil},

		// Writes: the target is written, the rest read.
		{"INSERT INTO workflows (name) VALUES ($1)", OpWrite, []string{"write workflows"}, nil},
		{"INSERT INTO archive SELECT * FROM secrets", OpWrite, []string{"write archive", "read secrets [INSERT … SELECT]"}, nil},
		{"INSERT INTO t VALUES ((SELECT x FROM secrets))", OpWrite, []string{"write t", "read secrets [a subquery]"}, nil},
		{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = (SELECT b FROM secrets LIMIT 1)", OpWrite,
			[]string{"write t updates(b)", "read secrets [a subquery]"}, nil},
		{"UPDATE agents a SET status = s.x FROM secrets s WHERE s.id = a.id", OpWrite,
			[]string{"write agents updates(status)", "read secrets [UPDATE … FROM]"}, nil},
		{"DELETE FROM agents a USING secrets s WHERE s.id = a.id", OpWrite,
			[]string{"write agents deletes", "read secrets [DELETE … USING]"}, nil},
		{"DELETE FROM secrets WHERE id = $1 RETURNING *", OpWrite, []string{"write secrets deletes"}, nil},
		{"MERGE INTO t USING secrets s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", OpWrite,
			[]string{"write t updates(a)", "read secrets [MERGE … USING]"}, nil},
		{"WITH d AS (DELETE FROM secrets RETURNING *) SELECT count(*) FROM d", OpWrite,
			[]string{`write secrets deletes [a CTE "d"]`}, []string{"count"}},
		{"WITH s AS (SELECT 1) INSERT INTO s SELECT * FROM s", OpWrite, []string{"write s"}, nil},
		{"TRUNCATE a, public.b", OpWrite, []string{"write a", "write public.b"}, nil},
		{"LOCK TABLE secrets IN SHARE MODE", OpWrite, []string{"write secrets"}, nil},
		{"REFRESH MATERIALIZED VIEW mv", OpWrite, []string{"write mv"}, nil},
		{"NOTIFY chan, 'x'", OpWrite, nil, nil},
		{"TRUNCATE allowed_w CASCADE", OpWrite, []string{"write allowed_w truncates"}, nil},
		{"TRUNCATE a RESTRICT", OpWrite, []string{"write a"}, nil},
		{"INSERT INTO t VALUES (1) ON CONFLICT DO NOTHING", OpWrite, []string{"write t"}, nil},
		// Built-ins that need their own permission, and sequences as the relations nextval writes.
		{"SELECT nextval('public.seq')", OpRead, []string{"write public.seq [nextval()]"}, []string{"nextval"}},
		{`INSERT INTO t VALUES (nextval('"My Seq"'::regclass))`, OpWrite, []string{"write t", "write My Seq [nextval()]"}, []string{"nextval"}},
		{"SELECT nextval(name) FROM seqs", OpRead, []string{"read seqs"}, []string{"nextval restricted"}},
		{"SELECT setval('s', 1)", OpRead, nil, []string{"setval restricted"}},
		{"SELECT pg_catalog.pg_terminate_backend(42)", OpRead, nil, []string{"pg_catalog.pg_terminate_backend restricted"}},
		{"SELECT pg_cancel_backend(pid) FROM pg_stat_activity", OpRead, []string{"read pg_stat_activity"}, []string{"pg_cancel_backend restricted"}},
		{"SELECT pg_log_backend_memory_contexts(1)", OpRead, nil, []string{"pg_log_backend_memory_contexts restricted"}},
		{"SELECT lo_put(1, 0, 'x')", OpRead, nil, []string{"lo_put restricted"}},
		{"SELECT pg_notify('cairn_events', 'workflow:x')", OpRead, nil, []string{"pg_notify restricted"}},
		{"SELECT pg_notify('River_Insert', '')", OpRead, nil, []string{"pg_notify restricted"}},
		{"SELECT pg_notify(c, 'x') FROM t", OpRead, []string{"read t"}, []string{"pg_notify restricted"}},
		{"SELECT pg_notify('jobs', 'x')", OpRead, nil, []string{"pg_notify"}},
		{"NOTIFY cairn_events, 'workflow:x'", OpWrite, nil, []string{"pg_catalog.pg_notify restricted [NOTIFY cairn_events]"}},
		{"SELECT public.pg_terminate_backend(1)", OpRead, nil, []string{"public.pg_terminate_backend"}},
		{"SET CONSTRAINTS ALL DEFERRED", OpWrite, nil, nil},
		{"CALL archive_old(30)", OpWrite, nil, []string{"archive_old"}},
		{"COPY secrets TO STDOUT", OpRead, []string{"read secrets"}, nil},
		{"COPY t FROM STDIN", OpWrite, []string{"write t"}, nil},
		{"COPY (SELECT * FROM secrets) TO STDOUT", OpRead, []string{"read secrets"}, nil},

		// DDL: what it names outside a query is its target; what its query reads is read.
		{"CREATE TABLE x (id int)", OpDDL, []string{"ddl x"}, nil},
		{"CREATE TABLE x (id int REFERENCES secrets)", OpDDL, []string{"ddl x", "ddl secrets"}, nil},
		{"CREATE TABLE x AS SELECT * FROM secrets", OpDDL, []string{"read secrets", "ddl x"}, nil},
		{"SELECT * INTO x FROM secrets", OpDDL, []string{"ddl x", "read secrets"}, nil},
		{"CREATE VIEW v AS SELECT * FROM secrets", OpDDL, []string{"ddl v", "read secrets"}, nil},
		{"CREATE MATERIALIZED VIEW mv AS SELECT * FROM secrets", OpDDL, []string{"read secrets", "ddl mv"}, nil},
		{"CREATE INDEX i ON public.t (a)", OpDDL, []string{"ddl public.t"}, nil},
		{"ALTER TABLE t ADD COLUMN b int", OpDDL, []string{"ddl t"}, nil},
		{"ALTER TABLE t RENAME TO u", OpDDL, []string{"ddl t"}, nil},
		{"DROP TABLE IF EXISTS a.b, c CASCADE", OpDDL, []string{"ddl a.b", "ddl c"}, nil},
		{"DROP VIEW v", OpDDL, []string{"ddl v"}, nil},
		{"DROP EXTENSION vector", OpDDL, nil, nil},
		{"CREATE EXTENSION IF NOT EXISTS vector", OpDDL, nil, nil},
		{"CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT count(*) FROM secrets'", OpDDL, nil, nil},
		{"DO $$ BEGIN DELETE FROM secrets; END $$", OpDDL, nil, nil},
		{"GRANT SELECT ON secrets TO bob", OpDDL, []string{"ddl secrets"}, nil},
		{"COMMENT ON TABLE secrets IS 'x'", OpDDL, nil, nil},
		{"VACUUM secrets", OpDDL, []string{"ddl secrets"}, nil},
		{"ANALYZE secrets", OpDDL, []string{"ddl secrets"}, nil},
		{"CLUSTER secrets USING i", OpDDL, []string{"ddl secrets"}, nil},
		{"REINDEX TABLE secrets", OpDDL, []string{"ddl secrets"}, nil},
		{"CHECKPOINT", OpDDL, nil, nil},
		{"CREATE ROLE bob", OpDDL, nil, nil},
		{"ALTER SYSTEM SET work_mem = '64MB'", OpDDL, nil, nil},
		{"CREATE POLICY p ON t USING (a IN (SELECT a FROM secrets))", OpDDL, []string{"ddl t", "read secrets [a subquery]"}, nil},
		{"CREATE RULE r AS ON INSERT TO t DO ALSO INSERT INTO secrets VALUES (1)", OpDDL, []string{"ddl t", "write secrets"}, nil},

		// Refused by every tool, but still described.
		{"BEGIN", OpRead, nil, nil},
		{"SET search_path = evil", OpRead, nil, nil},
	}
	for _, tc := range tests {
		st, err := Parse(tc.sql)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sql, err)
			continue
		}
		fp := st.Footprint
		var accesses, functions []string
		for _, a := range fp.Accesses {
			accesses = append(accesses, acc(a))
		}
		for _, f := range fp.Functions {
			functions = append(functions, fn(f))
		}
		if fp.Op != tc.op {
			t.Errorf("%q: Op = %s, want %s", tc.sql, fp.Op, tc.op)
		}
		if !slices.Equal(accesses, tc.accesses) {
			t.Errorf("%q: accesses\n got %q\nwant %q", tc.sql, accesses, tc.accesses)
		}
		if !slices.Equal(functions, tc.functions) {
			t.Errorf("%q: functions\n got %q\nwant %q", tc.sql, functions, tc.functions)
		}
	}
}

// TestFootprintSeesEveryRelation checks the footprint against the older Tables list: every
// relation the statement names is in both (the footprint only adds how and why).
func TestFootprintSeesEveryRelation(t *testing.T) {
	for _, sql := range []string{
		"SELECT * FROM a JOIN b ON a.id = b.id WHERE EXISTS (SELECT 1 FROM c WHERE c.x = (SELECT max(y) FROM d))",
		"WITH x AS (SELECT * FROM e), y AS (UPDATE f SET a = 1 FROM g RETURNING *) SELECT * FROM x, y, h",
		"INSERT INTO i SELECT * FROM j UNION SELECT * FROM k",
		"DELETE FROM l USING m WHERE l.id IN (SELECT id FROM n)",
		"SELECT * FROM o, LATERAL (SELECT * FROM p) q, ROWS FROM (generate_series(1, 2)) r",
		"MERGE INTO s USING (SELECT * FROM t) u ON s.id = u.id WHEN NOT MATCHED THEN INSERT VALUES (u.id)",
	} {
		st, err := Parse(sql)
		if err != nil {
			t.Fatal(err)
		}
		var got []TableRef
		for _, a := range st.Footprint.Accesses {
			if !slices.Contains(got, a.Table) {
				got = append(got, a.Table)
			}
		}
		for _, want := range st.Tables {
			if !slices.Contains(got, want) {
				t.Errorf("%q: footprint misses %s (has %v)", sql, want, got)
			}
		}
		if len(got) != len(st.Tables) {
			t.Errorf("%q: footprint has %v, Tables %v", sql, got, st.Tables)
		}
	}
}

func TestRedact(t *testing.T) {
	const secret = "hunter2"
	tests := []struct {
		sql, want string
	}{
		{"/* password=hunter2 */ INSERT INTO users (name, pw) VALUES ('bob', 'hunter2') -- secret hunter2",
			"INSERT INTO users (name, pw) VALUES ($1, $2)"},
		{"UPDATE t SET a = $1 WHERE b = 'hunter2' AND c = $2", "UPDATE t SET a = $1 WHERE b = $3 AND c = $2"},
		{"CREATE ROLE bob PASSWORD 'hunter2'", "CREATE ROLE bob PASSWORD $1"},
		{"DO $$ BEGIN PERFORM 'hunter2'; END $$", "DO $1"},
		{"DO $body$ BEGIN PERFORM 1; END $body$ LANGUAGE plpgsql", "DO $1 LANGUAGE plpgsql"},
		{"CREATE TABLE t (a text DEFAULT 'hunter2')", "CREATE TABLE t (a text DEFAULT $1)"},
		{"COMMENT ON TABLE t IS 'hunter2'", "COMMENT ON TABLE t IS $1"},
		{"ALTER SYSTEM SET foo = 'hunter2'", "ALTER SYSTEM SET foo = $1"},
		{"CREATE VIEW v AS SELECT 'hunter2'", "CREATE VIEW v AS SELECT $1"},
		{"SELECT E'hunter2\\n', B'1010', X'ff', 12.5, 42, -7, U&'hunt\\0065r2'", "SELECT $1, $2, $3, $4, $5, -$6, $7"},
		{"SELECT interval '1 day', 'hunter2'::text, ARRAY['hunter2'], '{\"pw\":\"hunter2\"}'::jsonb", "SELECT interval $1, $2::text, ARRAY[$3], $4::jsonb"},
		{"SELECT 'é' || 'hunter2'", "SELECT $1 || $2"},
		{"CREATE USER MAPPING FOR bob SERVER s OPTIONS (password 'hunter2')", "CREATE USER MAPPING FOR bob SERVER s OPTIONS (password $1)"},
		{"SELECT * FROM t WHERE a = 1 /* hunter2 */ AND b = 2", "SELECT * FROM t WHERE a = $1 AND b = $2"},
	}
	for _, tc := range tests {
		text, fp := Redact(tc.sql)
		if text != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.sql, text, tc.want)
		}
		if strings.Contains(text, secret) || strings.Contains(fp, secret) {
			t.Errorf("Redact(%q) leaks the literal: %q %q", tc.sql, text, fp)
		}
		if len(fp) != 16 {
			t.Errorf("Redact(%q): fingerprint %q, want 16 hex digits", tc.sql, fp)
		}
	}
	// Statements that differ only in literals share a fingerprint.
	_, a := Redact("INSERT INTO users (pw) VALUES ('hunter2')")
	_, b := Redact("INSERT INTO users (pw) VALUES ('other')")
	if a != b {
		t.Errorf("fingerprints differ: %s %s", a, b)
	}
	// Unscannable SQL gives nothing rather than a guess.
	if text, _ := Redact("SELECT 'unterminated hunter2"); text != "" {
		t.Errorf("unterminated literal: got %q", text)
	}
	long := "SELECT " + strings.Repeat("a, ", 2000) + "'hunter2'"
	if text, _ := Redact(long); len(text) > maxRedactedLen+len("…") || strings.Contains(text, secret) || !strings.HasSuffix(text, "…") {
		t.Errorf("long statement: got %d bytes ending %q", len(text), text[max(0, len(text)-20):])
	}
}

func ExampleRedact() {
	text, _ := Redact("INSERT INTO users (name, password) VALUES ('bob', 's3cret') -- set by admin")
	fmt.Println(text)
	// Output: INSERT INTO users (name, password) VALUES ($1, $2)
}
