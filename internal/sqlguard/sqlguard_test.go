package sqlguard

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// wantError checks err is an *Error whose text holds every one of want.
func wantError(t *testing.T, sql string, err error, want ...string) {
	t.Helper()
	var ge *Error
	if !errors.As(err, &ge) {
		t.Fatalf("%q: got error %v (%T), want *Error", sql, err, err)
	}
	if ge.Reason == "" || ge.Hint == "" {
		t.Errorf("%q: error %+v lacks a reason or a hint", sql, ge)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%q: error %q does not mention %q", sql, err, w)
		}
	}
}

func TestCheckQueryRefuses(t *testing.T) {
	const execute = "execute tool"
	tests := []struct {
		sql  string
		want []string
	}{
		// Several statements.
		{"COMMIT; DROP TABLE t", []string{"2 statements", "one call runs one statement", "transaction tool"}},
		{"SELECT 1; SELECT 2", []string{"2 statements", "transaction tool"}},
		{"SELECT 1; DELETE FROM t", []string{"2 statements"}},
		{"select 1; select 2; select 3;", []string{"3 statements"}},

		// Writes, DDL and maintenance.
		{"INSERT INTO t VALUES (1)", []string{"`INSERT` changes data", execute}},
		{"UPDATE t SET a = 1", []string{"`UPDATE` changes data", execute}},
		{"DELETE FROM t", []string{"`DELETE` changes data", execute}},
		{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", []string{"`MERGE` changes data", execute}},
		{"CREATE TABLE t (id int)", []string{"`CREATE TABLE` changes the schema", execute}},
		{"CREATE INDEX i ON t (a)", []string{"`CREATE INDEX`", execute}},
		{"ALTER TABLE t ADD COLUMN b int", []string{"`ALTER TABLE`", execute}},
		{"DROP TABLE t", []string{"`DROP TABLE`", execute}},
		{"CREATE EXTENSION IF NOT EXISTS vector", []string{"`CREATE EXTENSION`", execute}},
		{"CREATE TABLE x AS SELECT 1", []string{"`CREATE TABLE AS`", execute}},
		{"TRUNCATE t", []string{"`TRUNCATE`", execute}},
		{"GRANT SELECT ON t TO bob", []string{"`GRANT` changes privileges", execute}},
		{"REVOKE SELECT ON t FROM bob", []string{"`REVOKE`", execute}},
		{"VACUUM t", []string{"`VACUUM`", execute}},
		{"VACUUM (ANALYZE) t", []string{"`VACUUM`", execute}},
		{"ANALYZE t", []string{"`ANALYZE`", execute}},
		{"CLUSTER t USING i", []string{"`CLUSTER`", execute}},
		{"REINDEX TABLE t", []string{"`REINDEX`", execute}},
		{"REFRESH MATERIALIZED VIEW mv", []string{"`REFRESH MATERIALIZED VIEW`", execute}},
		{"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", []string{"`LOCK TABLE`", execute}},
		{"NOTIFY chan, 'x'", []string{"`NOTIFY`", execute}},
		{"CALL do_things(1)", []string{"`CALL`", execute}},
		{"DO $$ BEGIN DELETE FROM t; END $$", []string{"`DO`", execute}},
		{"CHECKPOINT", []string{"`CHECKPOINT`", execute}},
		{"SET CONSTRAINTS ALL DEFERRED", []string{"`SET CONSTRAINTS`", execute}},
		{"COMMENT ON TABLE t IS 'x'", []string{"`COMMENT`", execute}},

		// Transaction control.
		{"BEGIN", []string{"`BEGIN` is transaction control", "transaction tool"}},
		{"START TRANSACTION READ WRITE", []string{"`START TRANSACTION`"}},
		{"COMMIT", []string{"`COMMIT`"}},
		{"ROLLBACK", []string{"`ROLLBACK`"}},
		{"SAVEPOINT s", []string{"`SAVEPOINT`"}},
		{"RELEASE SAVEPOINT s", []string{"`RELEASE`"}},
		{"ROLLBACK TO SAVEPOINT s", []string{"`ROLLBACK`"}},
		{"PREPARE TRANSACTION 'x'", []string{"`PREPARE TRANSACTION`"}},
		{"COMMIT PREPARED 'x'", []string{"`COMMIT PREPARED`"}},
		{"ROLLBACK PREPARED 'x'", []string{"`ROLLBACK PREPARED`"}},
		{"SET TRANSACTION READ WRITE", []string{"`SET TRANSACTION` is transaction control"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE", []string{"`SET SESSION CHARACTERISTICS`"}},

		// Session state.
		{"SET search_path = evil, public", []string{"`SET` changes a session setting"}},
		{"SET LOCAL statement_timeout = 0", []string{"`SET`"}},
		{"RESET ALL", []string{"`RESET`"}},
		{"RESET statement_timeout", []string{"`RESET`"}},
		{"SET ROLE postgres", []string{"`SET ROLE` changes the session's role"}},
		{"SET SESSION AUTHORIZATION postgres", []string{"`SET SESSION AUTHORIZATION`"}},
		{"DISCARD ALL", []string{"`DISCARD`"}},
		{"PREPARE p AS SELECT 1", []string{"`PREPARE`", "$1"}},
		{"EXECUTE p", []string{"`EXECUTE`"}},
		{"DEALLOCATE p", []string{"`DEALLOCATE`"}},
		{"DECLARE c CURSOR FOR SELECT 1", []string{"`DECLARE CURSOR`"}},
		{"FETCH 10 FROM c", []string{"`FETCH`"}},
		{"MOVE NEXT FROM c", []string{"`MOVE`"}},
		{"CLOSE c", []string{"`CLOSE`"}},
		{"LISTEN chan", []string{"`LISTEN`"}},
		{"UNLISTEN *", []string{"`UNLISTEN`"}},
		{"LOAD 'auto_explain'", []string{"`LOAD`"}},

		// COPY in every form.
		{"COPY t TO '/tmp/x'", []string{"writes a file on the database server"}},
		{"COPY t FROM '/etc/passwd'", []string{"reads a file"}},
		{"COPY (select 1) TO PROGRAM 'id'", []string{"runs a program"}},
		{"COPY t FROM PROGRAM 'curl x'", []string{"runs a program"}},
		{"COPY t TO STDOUT", []string{"STDOUT", "query tool"}},
		{"COPY t FROM STDIN", []string{"STDIN", "INSERT"}},

		// Writes, table creation and locks hidden inside reads.
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", []string{"data-modifying WITH", "`DELETE`", execute}},
		{"SELECT * FROM (WITH x AS (UPDATE t SET a=1 RETURNING *) SELECT * FROM x) s", []string{"`UPDATE`", execute}},
		{"SELECT * FROM t WHERE id IN (WITH i AS (INSERT INTO u VALUES (1) RETURNING id) SELECT id FROM i)", []string{"`INSERT`"}},
		{"WITH a AS (SELECT 1), m AS (MERGE INTO t USING s ON true WHEN MATCHED THEN DELETE RETURNING *) SELECT * FROM a", []string{"`MERGE`"}},
		{"select 1 into newtable", []string{"`SELECT … INTO` creates a table"}},
		{"SELECT * INTO TEMP t2 FROM t", []string{"creates a table"}},
		{"select * from t for update", []string{"`FOR UPDATE` locks rows", "transaction tool"}},
		{"SELECT * FROM t FOR NO KEY UPDATE", []string{"`FOR NO KEY UPDATE`"}},
		{"SELECT * FROM t FOR SHARE SKIP LOCKED", []string{"`FOR SHARE`"}},
		{"SELECT * FROM t FOR KEY SHARE OF t", []string{"`FOR KEY SHARE`"}},
		{"SELECT * FROM t WHERE id IN (SELECT id FROM u FOR UPDATE)", []string{"`FOR UPDATE`"}},
		{"SELECT * FROM (SELECT * FROM u FOR SHARE) s", []string{"`FOR SHARE`"}},

		// EXPLAIN ANALYZE runs what it explains.
		{"EXPLAIN ANALYZE DELETE FROM t", []string{"`EXPLAIN ANALYZE` runs the statement", "`DELETE` changes data", "without ANALYZE"}},
		{"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", []string{"`UPDATE`"}},
		{"EXPLAIN (ANALYZE true) INSERT INTO t VALUES (1)", []string{"`INSERT`"}},
		{"EXPLAIN (ANALYZE 1) INSERT INTO t VALUES (1)", []string{"`INSERT`"}},
		{"EXPLAIN ANALYZE CREATE TABLE x AS SELECT 1", []string{"`CREATE TABLE AS`"}},
		{"EXPLAIN ANALYZE SELECT nextval('s')", []string{"`nextval`"}},
		{"EXPLAIN ANALYZE WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", []string{"`DELETE`"}},
		{"EXPLAIN ANALYZE EXECUTE p", []string{"`EXECUTE`"}},

		// Side-effecting functions, qualified or not, anywhere in the statement.
		{"SELECT set_config('search_path','x',false)", []string{"`set_config` changes a session setting"}},
		{"SELECT pg_catalog.set_config('search_path', 'x', false)", []string{"`pg_catalog.set_config`"}},
		{"SELECT * FROM t WHERE a = (SELECT nextval('s'))", []string{"`nextval` changes a sequence", execute}},
		{"SELECT pg_advisory_lock(1)", []string{"advisory lock"}},
		{"SELECT pg_try_advisory_xact_lock_shared(1)", []string{"advisory lock"}},
		{"SELECT pg_terminate_backend(pid) FROM pg_stat_activity", []string{"`pg_terminate_backend`"}},
		{"SELECT public.dblink('dbname=x', 'DELETE FROM t')", []string{"`public.dblink`"}},
		{"SELECT * FROM dblink_exec('dbname=x', 'DELETE FROM t')", []string{"`dblink_exec`"}},
		{"SELECT pg_read_file('/etc/passwd')", []string{"filesystem"}},
		{"SELECT CASE WHEN true THEN pg_notify('c', 'x') END", []string{"`pg_notify`"}},
		{"SELECT pg_log_backend_memory_contexts(pg_backend_pid())", []string{"`pg_log_backend_memory_contexts` controls the database server"}},
		{"SELECT count(*) FILTER (WHERE setval('s', 1) > 0) FROM t", []string{"`setval`"}},
		{"SELECT 1 UNION SELECT lo_unlink(1)", []string{"`lo_unlink`"}},
		{"VALUES (txid_current())", []string{"`txid_current`"}},
		{"SELECT PG_CATALOG.SET_CONFIG('a', 'b', false)", []string{"`pg_catalog.set_config`"}},
	}
	for _, tc := range tests {
		st, err := CheckQuery(tc.sql)
		if err == nil {
			t.Errorf("CheckQuery(%q) accepted %+v", tc.sql, st)
			continue
		}
		wantError(t, tc.sql, err, tc.want...)
		if p, err := Parse(tc.sql); err == nil && p.ReadOnly {
			t.Errorf("Parse(%q).ReadOnly = true for a statement query refuses", tc.sql)
		}
	}
}

// TestDeniedFunctions refuses every listed function in query, bare and qualified with
// pg_catalog, and keeps execute's refusals to the ones whose effect outlives the call.
func TestDeniedFunctions(t *testing.T) {
	for _, g := range funcRules {
		for _, n := range g.names {
			name := strings.Replace(n, "*", "x", 1)
			for _, call := range []string{name, "pg_catalog." + name} {
				sql := "SELECT " + call + "(1)"
				if _, err := CheckQuery(sql); err == nil {
					t.Errorf("CheckQuery(%q) accepted a denied function", sql)
				} else {
					wantError(t, sql, err, "`"+call+"`")
				}
				_, err := CheckExecute(sql)
				if refused := err != nil; refused != g.everywhere {
					t.Errorf("CheckExecute(%q) error %v, want refused=%v", sql, err, g.everywhere)
				}
			}
		}
	}
	for _, name := range []string{"pg_create_physical_replication_slot", "pg_create_logical_replication_slot", "pg_advisory_xact_lock", "pg_advisory_unlock_all", "dblink_connect_u", "pg_stat_reset_shared", "pg_replication_origin_create"} {
		if _, err := CheckQuery("SELECT " + name + "('x')"); err == nil {
			t.Errorf("CheckQuery accepted %s", name)
		}
	}
}

func TestCheckQueryAccepts(t *testing.T) {
	tests := []struct {
		sql        string
		command    string
		cursorable bool
	}{
		{"SELECT * FROM workflows WHERE status = 'running'", "SELECT", true},
		{"SELECT * FROM agents WHERE template = $1 AND tokens_used < $2", "SELECT", true},
		{"EXPLAIN ANALYZE SELECT * FROM workflows WHERE status = 'running' AND created_at > NOW() - INTERVAL '1 day'", "EXPLAIN", false},
		{"SELECT query, calls, mean_exec_time, rows FROM pg_stat_statements WHERE mean_exec_time > 1000 ORDER BY mean_exec_time DESC LIMIT 10", "SELECT", true},
		{"SELECT pid, usename, query, state FROM pg_stat_activity WHERE wait_event_type = 'Lock'", "SELECT", true},
		{"SELECT e.*, r.relation_type FROM entities e JOIN relations r ON r.target_id = e.id WHERE r.source_id = $1", "SELECT", true},
		{"SELECT DATE_TRUNC('day', created_at) as day, template_name, SUM(tokens_used) as total_tokens FROM agent_executions WHERE created_at > NOW() - INTERVAL '30 days' GROUP BY day, template_name ORDER BY day DESC", "SELECT", true},
		{"SHOW statement_timeout", "SHOW", false},
		{"SHOW ALL", "SHOW", false},
		{"VALUES (1, 'a'), (2, 'b')", "SELECT", true},
		{"TABLE workflows", "SELECT", true},
		{"SELECT 1", "SELECT", true},
		{"select table_name from information_schema.tables where table_schema = 'public'", "SELECT", true},
		{"SELECT c.relname, pg_size_pretty(pg_total_relation_size(c.oid)) FROM pg_catalog.pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace", "SELECT", true},
		{"SELECT * FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE NOT l.granted", "SELECT", true},
		{"WITH recent AS (SELECT * FROM workflows WHERE created_at > now() - interval '1 hour') SELECT status, count(*) FROM recent GROUP BY status", "SELECT", true},
		{"WITH RECURSIVE tree AS (SELECT id, parent_id FROM entities WHERE id = $1 UNION ALL SELECT e.id, e.parent_id FROM entities e JOIN tree t ON e.parent_id = t.id) SELECT * FROM tree", "SELECT", true},
		{"SELECT * FROM entities ORDER BY embedding <=> $1::vector LIMIT 5", "SELECT", true},
		{"SELECT pg_sleep(1)", "SELECT", true},
		{"SELECT current_setting('statement_timeout')", "SELECT", true},
		{"SELECT id FROM t UNION ALL SELECT id FROM u EXCEPT SELECT id FROM v", "SELECT", true},
		{"SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u WHERE u.t_id = t.id)", "SELECT", true},
		{"-- the running ones\nSELECT * FROM workflows /* all */ WHERE status = 'running';", "SELECT", true},
		{"SELECT $$; DELETE FROM t; $$ AS s", "SELECT", true},
		{"SELECT 'DROP TABLE t; COMMIT' AS s, \"for update\" FROM t", "SELECT", true},
		{"EXPLAIN SELECT * FROM t", "EXPLAIN", false},
		{"EXPLAIN (ANALYZE false) DELETE FROM t", "EXPLAIN", false},
		{"EXPLAIN (ANALYZE off, COSTS off) SELECT 1", "EXPLAIN", false},
		{"EXPLAIN (FORMAT JSON, ANALYZE, BUFFERS) SELECT * FROM t", "EXPLAIN", false},
		// Plan only: nothing runs, so what is planned may write.
		{"EXPLAIN DELETE FROM workflows WHERE created_at < NOW() - INTERVAL '30 days'", "EXPLAIN", false},
		{"EXPLAIN UPDATE agents SET status = $1 WHERE agent_id = $2", "EXPLAIN", false},
		{"EXPLAIN INSERT INTO t SELECT * FROM u", "EXPLAIN", false},
		{"EXPLAIN WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", "EXPLAIN", false},
		{"EXPLAIN SELECT * FROM t FOR UPDATE", "EXPLAIN", false},
	}
	for _, tc := range tests {
		st, err := CheckQuery(tc.sql)
		if err != nil {
			t.Errorf("CheckQuery(%q): %v", tc.sql, err)
			continue
		}
		if st.Command != tc.command || st.Cursorable != tc.cursorable || !st.ReadOnly {
			t.Errorf("CheckQuery(%q) = Command %q Cursorable %v ReadOnly %v, want %q %v true",
				tc.sql, st.Command, st.Cursorable, st.ReadOnly, tc.command, tc.cursorable)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		sql        string
		text       string
		command    string
		readOnly   bool
		cursorable bool
		tables     []TableRef
		functions  []string
	}{
		{sql: "  SELECT 1 ;  ", text: "SELECT 1", command: "SELECT", readOnly: true, cursorable: true},
		{sql: "\n\tselect 1;;", text: "select 1", command: "SELECT", readOnly: true, cursorable: true},
		{sql: "; SELECT 'é' ;", text: "SELECT 'é'", command: "SELECT", readOnly: true, cursorable: true},
		{sql: "SELECT 1 -- done", text: "SELECT 1 -- done", command: "SELECT", readOnly: true, cursorable: true},
		{
			sql:     "SELECT e.*, r.relation_type FROM entities e JOIN relations r ON r.target_id = e.id WHERE r.source_id = $1",
			text:    "SELECT e.*, r.relation_type FROM entities e JOIN relations r ON r.target_id = e.id WHERE r.source_id = $1",
			command: "SELECT", readOnly: true, cursorable: true,
			tables: []TableRef{{"", "entities"}, {"", "relations"}},
		},
		{
			sql:     "SELECT DATE_TRUNC('day', created_at) as day, SUM(tokens_used) FROM agent_executions WHERE created_at > NOW() - INTERVAL '30 days' GROUP BY day",
			command: "SELECT", readOnly: true, cursorable: true,
			tables:    []TableRef{{"", "agent_executions"}},
			functions: []string{"date_trunc", "sum", "now"},
		},
		{
			sql:     "SELECT extract(epoch FROM now()), pg_catalog.pg_size_pretty(1), Public.My_Func() FROM public.t, s.u, t",
			command: "SELECT", readOnly: true, cursorable: true,
			tables:    []TableRef{{"public", "t"}, {"s", "u"}, {"", "t"}},
			functions: []string{"extract", "now", "pg_catalog.pg_size_pretty", "public.my_func"},
		},
		{
			// CTE names are not tables; a non-recursive CTE's own name inside it is the table.
			sql:     "WITH a AS (SELECT * FROM b), b AS (SELECT * FROM a JOIN x ON true) SELECT * FROM b JOIN (SELECT * FROM a) q ON true, public.a",
			command: "SELECT", readOnly: true, cursorable: true,
			tables: []TableRef{{"", "b"}, {"", "x"}, {"public", "a"}},
		},
		{
			sql:     "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r",
			command: "SELECT", readOnly: true, cursorable: true,
		},
		{
			sql:     "SELECT * FROM t WHERE id IN (WITH c AS (SELECT id FROM u) SELECT id FROM c) AND EXISTS (SELECT 1 FROM c)",
			command: "SELECT", readOnly: true, cursorable: true,
			tables: []TableRef{{"", "t"}, {"", "u"}, {"", "c"}},
		},
		{
			sql:     "WITH d AS (DELETE FROM t WHERE a < 0 RETURNING *) SELECT * FROM d",
			command: "SELECT", cursorable: false,
			tables: []TableRef{{"", "t"}},
		},
		{
			// The target of a write is a table even when a CTE shares its name.
			sql:     "WITH t AS (SELECT 1 AS a) INSERT INTO t SELECT a FROM t",
			command: "INSERT",
			tables:  []TableRef{{"", "t"}},
		},
		{
			sql:     "UPDATE agents a SET status = $1 FROM teams t WHERE a.team_id = t.id AND t.name = lower($2) RETURNING a.*",
			command: "UPDATE",
			tables:  []TableRef{{"", "agents"}, {"", "teams"}}, functions: []string{"lower"},
		},
		{sql: "select * from t for update", command: "SELECT", tables: []TableRef{{"", "t"}}},
		{sql: "select 1 into newtable", command: "SELECT INTO", tables: []TableRef{{"", "newtable"}}},
		{sql: "SHOW statement_timeout", command: "SHOW", readOnly: true},
		{sql: "EXPLAIN SELECT * FROM s.t", command: "EXPLAIN", readOnly: true, tables: []TableRef{{"s", "t"}}},
		{sql: "EXPLAIN ANALYZE DELETE FROM t", command: "EXPLAIN", tables: []TableRef{{"", "t"}}},
		{sql: "DROP TABLE IF EXISTS a.b, c CASCADE", command: "DROP TABLE", tables: []TableRef{{"a", "b"}, {"", "c"}}},
		{sql: "DROP INDEX CONCURRENTLY idx_x", command: "DROP INDEX", tables: []TableRef{{"", "idx_x"}}},
		{sql: "DROP EXTENSION vector", command: "DROP EXTENSION"},
		{sql: "CREATE INDEX CONCURRENTLY i ON s.t (a)", command: "CREATE INDEX", tables: []TableRef{{"s", "t"}}},
		{sql: "CREATE TABLE x (id bigint DEFAULT nextval('seq'))", command: "CREATE TABLE", tables: []TableRef{{"", "x"}}, functions: []string{"nextval"}},
		{sql: "CREATE MATERIALIZED VIEW mv AS SELECT * FROM t", command: "CREATE MATERIALIZED VIEW", tables: []TableRef{{"", "t"}, {"", "mv"}}},
		{sql: "ALTER TABLE public.t RENAME TO u", command: "ALTER TABLE", tables: []TableRef{{"public", "t"}}},
		{sql: "ALTER INDEX i SET (fillfactor = 70)", command: "ALTER INDEX", tables: []TableRef{{"", "i"}}},
		{sql: "CREATE SEQUENCE s", command: "CREATE SEQUENCE", tables: []TableRef{{"", "s"}}},
		{sql: "CREATE FOREIGN DATA WRAPPER w", command: "CREATE FOREIGN DATA WRAPPER"},
		{sql: "CREATE USER MAPPING FOR u SERVER s", command: "CREATE USER MAPPING"},
		{sql: "TRUNCATE a, b", command: "TRUNCATE", tables: []TableRef{{"", "a"}, {"", "b"}}},
		{sql: "ANALYZE t", command: "ANALYZE", tables: []TableRef{{"", "t"}}},
		{sql: "CALL p(now())", command: "CALL", functions: []string{"p", "now"}},
		{sql: "COPY t TO STDOUT", command: "COPY", tables: []TableRef{{"", "t"}}},
		{sql: "SET ROLE postgres", command: "SET ROLE"},
		{sql: "SET TIME ZONE 'UTC'", command: "SET"},
		{sql: "START TRANSACTION", command: "START TRANSACTION"},
	}
	for _, tc := range tests {
		st, err := Parse(tc.sql)
		if err != nil {
			t.Errorf("Parse(%q): %v", tc.sql, err)
			continue
		}
		text := tc.text
		if text == "" {
			text = tc.sql
		}
		if st.Text != text || st.Command != tc.command || st.ReadOnly != tc.readOnly || st.Cursorable != tc.cursorable {
			t.Errorf("Parse(%q) = Text %q Command %q ReadOnly %v Cursorable %v, want %q %q %v %v",
				tc.sql, st.Text, st.Command, st.ReadOnly, st.Cursorable, text, tc.command, tc.readOnly, tc.cursorable)
		}
		if !slices.Equal(st.Tables, tc.tables) {
			t.Errorf("Parse(%q).Tables = %v, want %v", tc.sql, st.Tables, tc.tables)
		}
		if !slices.Equal(st.Functions, tc.functions) {
			t.Errorf("Parse(%q).Functions = %q, want %q", tc.sql, st.Functions, tc.functions)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		sql  string
		want []string
	}{
		{"", []string{"empty"}},
		{" \n\t ", []string{"empty"}},
		{";", []string{"no statement"}},
		{"-- just a comment", []string{"no statement"}},
		{"SELEC 1", []string{`syntax error at or near "SELEC"`, "line 1, column 1"}},
		{"SELECT *\nFROM t\nWHERE a = = 1", []string{"syntax error", "line 3, column 11"}},
		{"SELECT 'é', (", []string{"syntax error at end of input", "column 14"}},
		{"SELECT 'unterminated", []string{"unterminated quoted string"}},
		{"SELECT 1\x00; DROP TABLE t", []string{"NUL"}},
		{"SELECT 1; SELECT 2; SELECT 3; SELECT 4; SELECT 5; SELECT 6", []string{"6 statements", "…"}},
	}
	for _, tc := range tests {
		for _, check := range []func(string) (*Statement, error){Parse, CheckQuery, CheckExecute} {
			_, err := check(tc.sql)
			wantError(t, tc.sql, err, tc.want...)
		}
	}
}

func TestCheckExecute(t *testing.T) {
	accepts := []struct {
		sql      string
		command  string
		readOnly bool
	}{
		{"INSERT INTO workflows (name, status) VALUES ($1, $2)", "INSERT", false},
		{"UPDATE agents SET status = $1 WHERE agent_id = $2", "UPDATE", false},
		{"DELETE FROM workflows WHERE created_at < NOW() - INTERVAL '30 days'", "DELETE", false},
		{"CREATE INDEX IF NOT EXISTS idx_entities_embedding ON entities USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)", "CREATE INDEX", false},
		{"CREATE INDEX IF NOT EXISTS idx_entities_embedding_hnsw ON entities USING hnsw (embedding vector_cosine_ops) WITH (m = 16, ef_construction = 64)", "CREATE INDEX", false},
		{"CREATE INDEX CONCURRENTLY idx_a ON t (a)", "CREATE INDEX", false},
		{"INSERT INTO t (a) VALUES (1) ON CONFLICT (a) DO UPDATE SET b = excluded.b RETURNING id", "INSERT", false},
		{"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.a)", "MERGE", false},
		{"WITH d AS (DELETE FROM t RETURNING *) INSERT INTO archive SELECT * FROM d", "INSERT", false},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", "SELECT", false},
		{"CREATE TABLE IF NOT EXISTS t (id bigserial PRIMARY KEY, embedding vector(3))", "CREATE TABLE", false},
		{"CREATE EXTENSION IF NOT EXISTS vector", "CREATE EXTENSION", false},
		{"ALTER TABLE t ADD COLUMN x int", "ALTER TABLE", false},
		{"DROP TABLE t", "DROP TABLE", false},
		{"TRUNCATE t", "TRUNCATE", false},
		{"DO $$ BEGIN DELETE FROM t; END $$", "DO", false},
		{"CALL archive_old(30)", "CALL", false},
		{"VACUUM (VERBOSE, ANALYZE) t", "VACUUM", false},
		{"ANALYZE t", "ANALYZE", false},
		{"REFRESH MATERIALIZED VIEW CONCURRENTLY mv", "REFRESH MATERIALIZED VIEW", false},
		{"NOTIFY workflow_done, 'x'", "NOTIFY", false},
		{"SELECT pg_notify('workflow_done', 'x')", "SELECT", false},
		{"SELECT nextval('s')", "SELECT", false},
		{"LOCK TABLE t IN SHARE MODE", "LOCK TABLE", false},
		{"SET CONSTRAINTS ALL DEFERRED", "SET CONSTRAINTS", false},
		{"GRANT SELECT ON t TO reader", "GRANT", false},
		{"select 1 into newtable", "SELECT INTO", false},
		{"SELECT * FROM t WHERE id = $1 FOR UPDATE", "SELECT", false},
		{"EXPLAIN ANALYZE DELETE FROM t", "EXPLAIN", false},
		{"SELECT * FROM workflows WHERE status = 'running'", "SELECT", true},
		{"EXPLAIN SELECT 1", "EXPLAIN", true},
		{"SHOW search_path", "SHOW", true},
	}
	for _, tc := range accepts {
		st, err := CheckExecute(tc.sql)
		if err != nil {
			t.Errorf("CheckExecute(%q): %v", tc.sql, err)
			continue
		}
		if st.Command != tc.command || st.ReadOnly != tc.readOnly {
			t.Errorf("CheckExecute(%q) = Command %q ReadOnly %v, want %q %v", tc.sql, st.Command, st.ReadOnly, tc.command, tc.readOnly)
		}
	}

	refuses := []struct {
		sql  string
		want []string
	}{
		{"COMMIT; DROP TABLE t", []string{"2 statements", "transaction tool"}},
		{"INSERT INTO t VALUES (1); INSERT INTO t VALUES (2)", []string{"2 statements", "transaction tool"}},
		{"BEGIN", []string{"transaction control", "transaction tool"}},
		{"START TRANSACTION ISOLATION LEVEL SERIALIZABLE", []string{"`START TRANSACTION`"}},
		{"COMMIT", []string{"`COMMIT`", "own transaction"}},
		{"ROLLBACK", []string{"`ROLLBACK`"}},
		{"SAVEPOINT a", []string{"`SAVEPOINT`"}},
		{"RELEASE a", []string{"`RELEASE`"}},
		{"PREPARE TRANSACTION 'x'", []string{"`PREPARE TRANSACTION`"}},
		{"COMMIT PREPARED 'x'", []string{"`COMMIT PREPARED`"}},
		{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", []string{"`SET TRANSACTION`"}},
		{"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", []string{"`SET SESSION CHARACTERISTICS`"}},
		{"SET search_path TO x", []string{"`SET`", "pooled"}},
		{"SET LOCAL statement_timeout = 0", []string{"`SET`"}},
		{"RESET search_path", []string{"`RESET`"}},
		{"SET ROLE postgres", []string{"`SET ROLE`"}},
		{"SET SESSION AUTHORIZATION DEFAULT", []string{"`SET SESSION AUTHORIZATION`"}},
		{"DISCARD PLANS", []string{"`DISCARD`"}},
		{"PREPARE p (int) AS INSERT INTO t VALUES ($1)", []string{"`PREPARE`"}},
		{"EXECUTE p(1)", []string{"`EXECUTE`"}},
		{"DEALLOCATE ALL", []string{"`DEALLOCATE`"}},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", []string{"`DECLARE CURSOR`"}},
		{"FETCH ALL FROM c", []string{"`FETCH`"}},
		{"MOVE LAST IN c", []string{"`MOVE`"}},
		{"CLOSE ALL", []string{"`CLOSE`"}},
		{"LISTEN workflow_done", []string{"`LISTEN`"}},
		{"UNLISTEN workflow_done", []string{"`UNLISTEN`"}},
		{"LOAD 'plugin'", []string{"`LOAD`"}},
		{"COPY t TO '/tmp/x'", []string{"writes a file"}},
		{"COPY t FROM '/tmp/x' WITH (FORMAT csv)", []string{"reads a file"}},
		{"COPY (select 1) TO PROGRAM 'id'", []string{"runs a program"}},
		{"COPY t FROM STDIN", []string{"STDIN"}},
		{"COPY t TO STDOUT", []string{"STDOUT"}},
		{"SELECT set_config('search_path', 'x', false)", []string{"`set_config`", "pooled"}},
		{"SELECT pg_catalog.set_config('role', 'postgres', false)", []string{"`pg_catalog.set_config`"}},
		{"UPDATE t SET a = 1 WHERE set_config('x.y', '1', false) IS NOT NULL", []string{"`set_config`"}},
		{"SELECT pg_advisory_lock(42)", []string{"advisory lock"}},
		{"SELECT pg_advisory_unlock_all()", []string{"advisory lock"}},
		{"SELECT pg_try_advisory_lock(1)", []string{"advisory lock"}},
		{"SELECT pg_advisory_xact_lock(1)", []string{"advisory lock"}},
		{"SELECT pg_read_file('/etc/passwd')", []string{"filesystem"}},
		{"SELECT lo_import('/etc/passwd')", []string{"filesystem"}},
		{"SELECT dblink_connect('c', 'dbname=x')", []string{"dblink"}},
		{"EXPLAIN ANALYZE SELECT set_config('a', 'b', false)", []string{"`set_config`"}},
	}
	for _, tc := range refuses {
		st, err := CheckExecute(tc.sql)
		if err == nil {
			t.Errorf("CheckExecute(%q) accepted %+v", tc.sql, st)
			continue
		}
		wantError(t, tc.sql, err, tc.want...)
	}
}

func TestCheckWhereClause(t *testing.T) {
	for _, clause := range []string{
		"entity_type = 'error'",
		"episode_type = 'error' AND created_at > NOW() - INTERVAL '7 days'",
		"id IN (SELECT id FROM x WHERE y)",
		"status = 'open' -- only open ones",
		"(a = 1 OR b = 2) AND NOT c",
		"metadata->>'kind' = 'note' AND tags @> ARRAY['x']",
		"EXISTS (SELECT 1 FROM relations r WHERE r.source_id = id)",
		"name LIKE '%; DROP TABLE x; --%'",
	} {
		if err := CheckWhereClause(clause); err != nil {
			t.Errorf("CheckWhereClause(%q): %v", clause, err)
		}
	}

	refuses := []struct {
		clause string
		want   []string
	}{
		{"", []string{"empty"}},
		{"   \n", []string{"empty"}},
		{"true) UNION SELECT * FROM secrets --", []string{"syntax error"}},
		{"true) UNION (SELECT 2", []string{"syntax error", "column 5"}},
		{"true UNION SELECT password FROM users", []string{"UNION"}},
		{"1=1; DROP TABLE x", []string{"semicolon"}},
		{"1=1; DROP TABLE x; --", []string{"semicolon"}},
		{"true ORDER BY 1", []string{"ORDER BY"}},
		{"x = 1 LIMIT 5", []string{"LIMIT"}},
		{"x = 1 OFFSET 5", []string{"OFFSET"}},
		{"x = 1 FETCH FIRST 1 ROW ONLY", []string{"FETCH"}},
		{"true GROUP BY 1", []string{"GROUP BY"}},
		{"true HAVING true", []string{"HAVING"}},
		{"true WINDOW w AS ()", []string{"WINDOW"}},
		{"true FOR UPDATE", []string{"locking"}},
		{"x = (", []string{"syntax error"}},
		{"true /* unterminated", []string{"unterminated"}},
		{"id IN (SELECT id FROM x FOR UPDATE)", []string{"`FOR UPDATE`"}},
		{"nextval('s') > 0", []string{"`nextval`"}},
		{"pg_catalog.set_config('a', 'b', false) IS NOT NULL", []string{"`pg_catalog.set_config`"}},
		{"id IN (WITH d AS (DELETE FROM t RETURNING id) SELECT id FROM d)", []string{"`DELETE`"}},
		{"x = 1\x00; DROP TABLE t", []string{"NUL"}},
	}
	for _, tc := range refuses {
		err := CheckWhereClause(tc.clause)
		if err == nil {
			t.Errorf("CheckWhereClause(%q) accepted it", tc.clause)
			continue
		}
		wantError(t, tc.clause, err, tc.want...)
	}
}

func TestErrorString(t *testing.T) {
	if got := (&Error{Reason: "r", Hint: "h"}).Error(); got != "r; h" {
		t.Errorf("got %q", got)
	}
	if got := (&Error{Reason: "r"}).Error(); got != "r" {
		t.Errorf("got %q", got)
	}
}

// TestConcurrent runs the checks from many goroutines, for the race detector.
func TestConcurrent(t *testing.T) {
	for i := range 8 {
		t.Run("", func(t *testing.T) {
			t.Parallel()
			for range 50 {
				if _, err := CheckQuery("SELECT * FROM t WHERE id = $1"); err != nil {
					t.Error(err)
				}
				if _, err := CheckExecute("SELECT set_config('a', 'b', false)"); err == nil {
					t.Error("set_config accepted")
				}
				if err := CheckWhereClause("a = " + string(rune('0'+i))); err != nil {
					t.Error(err)
				}
			}
		})
	}
}

func BenchmarkCheckQuery(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CheckQuery("SELECT id, name, status, created_at FROM workflows WHERE id = $1"); err != nil {
			b.Fatal(err)
		}
	}
}
