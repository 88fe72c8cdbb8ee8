package mcp_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

const safetySchema = `
CREATE TABLE t (id serial PRIMARY KEY, v int NOT NULL);
INSERT INTO t (v) VALUES (1), (2), (3);
CREATE FUNCTION sneaky_write() RETURNS int LANGUAGE sql AS $$ INSERT INTO t (v) VALUES (99) RETURNING 1 $$;
CREATE FUNCTION sneaky_setting() RETURNS text LANGUAGE sql AS $$ SELECT set_config('search_path', 'pg_catalog', false) $$;
CREATE FUNCTION sneaky_lock() RETURNS void LANGUAGE sql AS $$ SELECT pg_advisory_lock(42) $$;`

// TestQueryCannotWrite is the read-only wall: whatever the text, query changes nothing beyond
// the call. The parser refuses what it can name; the read-only, rolled-back transaction and the
// session reset catch the rest.
func TestQueryCannotWrite(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	if _, err := db.Pool.Exec(context.Background(), safetySchema); err != nil {
		t.Fatal(err)
	}
	// One connection, so every call below shares the session a previous call might have dirtied.
	cs := stdioClient(t, db, "--pool-min", "1", "--pool-max", "1")

	refused := []struct {
		sql  string
		want string
	}{
		{"SELECT 1; DELETE FROM t", "statement"},
		{"COMMIT; DROP TABLE t", "statement"},
		{"DELETE FROM t", "execute"},
		{"UPDATE t SET v = 0", "execute"},
		{"INSERT INTO t (v) VALUES (5)", "execute"},
		{"TRUNCATE t", ""},
		{"DROP TABLE t", ""},
		{"CREATE TABLE x (a int)", ""},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ""},
		{"SELECT * FROM (WITH u AS (UPDATE t SET v = 0 RETURNING *) SELECT * FROM u) s", ""},
		{"COPY t TO '/tmp/cairn-copy-test'", ""},
		{"COPY (SELECT 1) TO PROGRAM 'id'", ""},
		{"DO $$ BEGIN DELETE FROM t; END $$", ""},
		{"SELECT * FROM t FOR UPDATE", ""},
		{"SELECT * FROM t FOR SHARE", ""},
		{"SELECT 1 INTO newtab", ""},
		{"BEGIN", ""},
		{"COMMIT", ""},
		{"ROLLBACK", ""},
		{"SET TRANSACTION READ WRITE", ""},
		{"SET search_path = pg_catalog", ""},
		{"SET ROLE postgres", ""},
		{"RESET ALL", ""},
		{"DISCARD ALL", ""},
		{"PREPARE p AS SELECT 1", ""},
		{"LISTEN chan", ""},
		{"VACUUM t", ""},
		{"EXPLAIN ANALYZE DELETE FROM t", ""},
		{"SELECT set_config('search_path', 'pg_catalog', false)", "set_config"},
		{"SELECT pg_catalog.set_config('statement_timeout', '0', false)", "set_config"},
		{"SELECT pg_advisory_lock(1)", "pg_advisory_lock"},
		{"SELECT nextval('t_id_seq')", "nextval"},
		{"SELECT pg_terminate_backend(pg_backend_pid())", "pg_terminate_backend"},
		{"SELECT lo_import('/etc/passwd')", "lo_import"},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.sql, func(t *testing.T) {
			if tc.want != "" {
				fails(t, cs, "query", map[string]any{"sql": tc.sql}, tc.want)
			} else {
				fails(t, cs, "query", map[string]any{"sql": tc.sql})
			}
		})
	}

	// The second wall: functions the parser cannot see into.
	fails(t, cs, "query", map[string]any{"sql": "SELECT sneaky_write()"}, "read-only")
	ok(t, cs, "query", map[string]any{"sql": "SELECT sneaky_setting()"})
	ok(t, cs, "query", map[string]any{"sql": "SELECT sneaky_lock()"})

	// Nothing changed, and nothing leaked into the (single) pooled session.
	if got := scalar(t, cs, "SELECT string_agg(v::text, ',' ORDER BY id) FROM t"); got != "1,2,3" {
		t.Errorf("table t changed: %s", got)
	}
	if got := scalar(t, cs, "SELECT current_setting('search_path')"); got != `"$user", public` {
		t.Errorf("search_path leaked into the next call: %q", got)
	}
	if got := scalar(t, cs, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"); got != "0" {
		t.Errorf("advisory lock leaked into the next call: %s held", got)
	}
	if got := scalar(t, cs, "SELECT current_setting('statement_timeout')"); got != "30s" {
		t.Errorf("statement_timeout = %q, want the configured 30s", got)
	}
}

// TestSessionStateDoesNotLeakFromWrites: execute and transaction may run functions that change
// the session; the reset after each call puts the pooled connection back as it was.
func TestSessionStateDoesNotLeakFromWrites(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	if _, err := db.Pool.Exec(context.Background(), safetySchema); err != nil {
		t.Fatal(err)
	}
	cs := stdioClient(t, db, "--pool-min", "1", "--pool-max", "1")

	ok(t, cs, "execute", map[string]any{"sql": "SELECT sneaky_setting()"})
	ok(t, cs, "execute", map[string]any{"sql": "SELECT sneaky_lock()"})
	ok(t, cs, "execute", map[string]any{"sql": "CREATE TEMP TABLE scratch (a int)"})
	ok(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "SELECT sneaky_lock()"},
		map[string]any{"sql": "SELECT sneaky_setting()"},
	}})
	for _, refused := range []string{"SET search_path = pg_catalog", "SET ROLE postgres", "BEGIN", "COMMIT; DROP TABLE t", "SELECT 1; SELECT 2", "DISCARD ALL", "COPY t TO '/tmp/x'", "LISTEN x"} {
		fails(t, cs, "execute", map[string]any{"sql": refused})
	}
	if got := scalar(t, cs, "SELECT current_setting('search_path')"); got != `"$user", public` {
		t.Errorf("search_path leaked: %q", got)
	}
	if got := scalar(t, cs, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"); got != "0" {
		t.Errorf("advisory locks leaked: %s", got)
	}
	fails(t, cs, "query", map[string]any{"sql": "SELECT * FROM scratch"}, "does not exist")
}

func TestStatementTimeoutCutsRunawayQueries(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--statement-timeout", "300ms", "--pool-max", "1")
	start := time.Now()
	fails(t, cs, "query", map[string]any{"sql": "SELECT pg_sleep(5)"}, "statement timeout")
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("timeout took %s", d)
	}
	fails(t, cs, "execute", map[string]any{"sql": "SELECT pg_sleep(5)"}, "statement timeout")
	// The server keeps serving on the same connection.
	if got := scalar(t, cs, "SELECT 1"); got != "1" {
		t.Errorf("after timeout: %s", got)
	}
}

func TestReadOnlyModeRefusesWrites(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	if _, err := db.Pool.Exec(context.Background(), safetySchema+`; CREATE EXTENSION IF NOT EXISTS vector; CREATE TABLE e (id serial PRIMARY KEY, name text, embedding vector(2))`); err != nil {
		t.Fatal(err)
	}
	cs := stdioClient(t, db, "--read-only")
	fails(t, cs, "execute", map[string]any{"sql": "INSERT INTO t (v) VALUES (4)"}, "read-only")
	fails(t, cs, "transaction", map[string]any{"statements": []any{map[string]any{"sql": "INSERT INTO t (v) VALUES (4)"}}}, "read-only")
	fails(t, cs, "insert_vector", map[string]any{"table": "e", "columns": map[string]any{"name": "x"}, "embedding_column": "embedding", "embedding": []any{1, 0}}, "read-only")
	if got := scalar(t, cs, "SELECT count(*) FROM t"); got != "3" {
		t.Errorf("rows = %s", got)
	}
	info := ok(t, cs, "server_info", map[string]any{})
	if info["read_only"] != true {
		t.Errorf("server_info read_only = %v", info["read_only"])
	}
}

// TestParallelCallsShareThePool runs many calls at once over one stdio session.
func TestParallelCallsShareThePool(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--pool-max", "4")
	errs := make(chan error, 64)
	for i := range 64 {
		go func() {
			res := call(t, cs, "query", map[string]any{"sql": "SELECT $1::int * 2 AS v", "params": []any{i}})
			if res.IsError {
				errs <- fmt.Errorf("call %d: %s", i, res.Text)
				return
			}
			rs, _ := res.Data["rows"].([]any)
			if len(rs) != 1 || fmt.Sprint(rs[0].(map[string]any)["v"]) != fmt.Sprint(i*2) {
				errs <- fmt.Errorf("call %d: got %v", i, rs)
				return
			}
			errs <- nil
		}()
	}
	for range 64 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
