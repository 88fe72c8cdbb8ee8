package mcp_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// seedSchema adds what the generic-tool tests need beyond cairn's migrations (which bring
// workflows and workflow_steps): the predecessor's index on workflows, and an agents table
// until the agents module brings the real one.
const seedSchema = `
CREATE INDEX IF NOT EXISTS idx_workflows_status ON workflows(status);
CREATE TABLE IF NOT EXISTS agents (
	agent_id text PRIMARY KEY,
	template text NOT NULL,
	state text,
	status text,
	tokens_used bigint NOT NULL DEFAULT 0,
	updated_at timestamptz
);`

func setupSeed(t *testing.T, db *testdb.DB) {
	t.Helper()
	if _, err := db.Pool.Exec(t.Context(), seedSchema); err != nil {
		t.Fatal(err)
	}
}

func TestQueryReturnsRowsColumnsAndCount(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	cs := stdioClient(t, db)

	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO agents (agent_id, template, tokens_used) VALUES ($1, $2, $3), ($4, $2, $5)",
		"params": []any{"a1", "researcher", 1000, "a2", 90000}})
	// The seed's parameterized query, verbatim.
	data := ok(t, cs, "query", map[string]any{"sql": "SELECT * FROM agents WHERE template = $1 AND tokens_used < $2", "params": []any{"researcher", 50000}})
	rs := rows(t, data)
	if len(rs) != 1 || rs[0]["agent_id"] != "a1" || fmt.Sprint(rs[0]["tokens_used"]) != "1000" {
		t.Fatalf("rows = %v", rs)
	}
	if fmt.Sprint(data["row_count"]) != "1" || data["truncated"] != false {
		t.Errorf("row_count/truncated = %v/%v", data["row_count"], data["truncated"])
	}
	// columns lists the table's columns in their order.
	want := ok(t, cs, "query", map[string]any{"sql": "SELECT coalesce(json_agg(column_name::text ORDER BY ordinal_position), '[]') AS c FROM information_schema.columns WHERE table_name = 'agents'"})
	cols, _ := json.Marshal(data["columns"])
	wantCols, _ := json.Marshal(rows(t, want)[0]["c"])
	if string(cols) != string(wantCols) {
		t.Errorf("columns = %s, want %s", cols, wantCols)
	}
}

func TestQueryValueEncoding(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	tests := []struct {
		sql  string
		want string // JSON of the single value
	}{
		{"SELECT 42::int4", `42`},
		{"SELECT 9007199254740992::int8", `9007199254740992`},
		{"SELECT 9007199254740993::int8", `"9007199254740993"`},
		{"SELECT 12.50::numeric", `12.50`},
		{"SELECT 1234567890.1234567::numeric", `"1234567890.1234567"`},
		{"SELECT 'NaN'::float8", `"NaN"`},
		{"SELECT true", `true`},
		{"SELECT 'a\"b'::text", `"a\"b"`},
		{"SELECT '7d444840-9dc0-11d1-b245-5ffdce74fad2'::uuid", `"7d444840-9dc0-11d1-b245-5ffdce74fad2"`},
		{"SELECT '2026-11-23 12:13:27.5'::timestamp", `"2026-11-23T12:13:27.5"`},
		{"SELECT '2026-11-23'::date", `"2026-11-23"`},
		{`SELECT '{"a": [1, 2], "b": null}'::jsonb`, `{"a":[1,2],"b":null}`},
		{"SELECT ARRAY[1, NULL, 3]", `[1,null,3]`},
		{"SELECT ARRAY['x', 'y,z']", `["x","y,z"]`},
		{"SELECT '\\x0102ff'::bytea", `"AQL/"`},
		{"SELECT '[1,2.5,3]'::vector", `[1,2.5,3]`},
		{"SELECT NULL::text", `null`},
	}
	for _, tc := range tests {
		t.Run(tc.sql, func(t *testing.T) {
			rs := rows(t, ok(t, cs, "query", map[string]any{"sql": tc.sql}))
			var v any
			for _, x := range rs[0] {
				v = x
			}
			got, _ := json.Marshal(v)
			var want any
			json.Unmarshal([]byte(tc.want), &want)
			wantJSON, _ := json.Marshal(want)
			if string(got) != string(wantJSON) {
				t.Errorf("got %s, want %s", got, wantJSON)
			}
		})
	}
	// timestamptz comes as RFC 3339 in the session's time zone: compare instants.
	got := scalar(t, cs, "SELECT '2026-11-23 12:13:27.5+00'::timestamptz")
	ts, err := time.Parse(time.RFC3339Nano, got)
	if err != nil || !ts.Equal(time.Date(2026, 11, 23, 12, 13, 27, 5e8, time.UTC)) {
		t.Errorf("timestamptz = %q (%v)", got, err)
	}
}

func TestQueryTruncatesAtMaxRows(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--max-rows", "50")
	// A trailing comment must not break the row cap.
	data := ok(t, cs, "query", map[string]any{"sql": "SELECT g FROM generate_series(1, 1000) g -- every number"})
	if n := len(rows(t, data)); n != 50 || fmt.Sprint(data["row_count"]) != "50" || data["truncated"] != true {
		t.Fatalf("rows=%d row_count=%v truncated=%v", n, data["row_count"], data["truncated"])
	}
	if !strings.Contains(fmt.Sprint(data["notice"]), "max rows") {
		t.Errorf("notice = %v", data["notice"])
	}
	data = ok(t, cs, "query", map[string]any{"sql": "SELECT g FROM generate_series(1, 50) g"})
	if data["truncated"] != false {
		t.Errorf("exactly max rows should not be truncated: %v", data["truncated"])
	}
	// A non-cursor statement (EXPLAIN) is cut too.
	data = ok(t, cs, "query", map[string]any{"sql": "EXPLAIN SELECT * FROM pg_class"})
	if len(rows(t, data)) == 0 {
		t.Error("EXPLAIN returned no plan rows")
	}
}

func TestExecuteWritesAndReturns(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	cs := stdioClient(t, db)

	// The seed's statements, verbatim.
	d := ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO workflows (name, status) VALUES ($1, $2)", "params": []any{"deployment-approval", "pending"}})
	if d["command"] != "INSERT" || fmt.Sprint(d["rows_affected"]) != "1" {
		t.Fatalf("insert result = %v", d)
	}
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO agents (agent_id, template) VALUES ($1, $2)", "params": []any{"agent-abc123", "researcher"}})
	d = ok(t, cs, "execute", map[string]any{"sql": "UPDATE agents SET status = $1 WHERE agent_id = $2", "params": []any{"completed", "agent-abc123"}})
	if d["command"] != "UPDATE" || fmt.Sprint(d["rows_affected"]) != "1" {
		t.Fatalf("update result = %v", d)
	}
	d = ok(t, cs, "execute", map[string]any{"sql": "DELETE FROM workflows WHERE created_at < NOW() - INTERVAL '30 days'"})
	if d["command"] != "DELETE" || fmt.Sprint(d["rows_affected"]) != "0" {
		t.Fatalf("delete result = %v", d)
	}
	d = ok(t, cs, "execute", map[string]any{"sql": "CREATE INDEX IF NOT EXISTS idx_agents_template ON agents(template)"})
	if d["command"] != "CREATE INDEX" {
		t.Fatalf("create index result = %v", d)
	}
	// RETURNING gives rows; a uuid parameter binds from a JSON string.
	d = ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1) RETURNING id, name, status",
		"params": []any{"second"}})
	rs := rows(t, d)
	if len(rs) != 1 || rs[0]["status"] != "pending" {
		t.Fatalf("RETURNING rows = %v", rs)
	}
	id := rs[0]["id"].(string)
	if got := scalar(t, cs, "SELECT name FROM workflows WHERE id = $1", id); got != "second" {
		t.Errorf("lookup by uuid param = %q", got)
	}
	// jsonb and array parameters.
	ok(t, cs, "execute", map[string]any{"sql": "CREATE TABLE docs (id serial PRIMARY KEY, body jsonb, tags text[])"})
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO docs (body, tags) VALUES ($1, $2)",
		"params": []any{map[string]any{"k": []any{1, "two"}}, []any{"a", "b c", `q"uote`}}})
	if got := scalar(t, cs, "SELECT body->'k'->>1 || '|' || array_to_string(tags, '|') FROM docs"); got != `two|a|b c|q"uote` {
		t.Errorf("jsonb/array params round trip = %q", got)
	}
}

func TestTransactionSeedExampleAndReferences(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	cs := stdioClient(t, db)

	// The seed's example, verbatim: {workflow_id} is the id the first statement returned.
	d := ok(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "params": []any{"research-pipeline"}},
		map[string]any{"sql": "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", "params": []any{"{workflow_id}", "discover"}},
	}})
	if d["committed"] != true {
		t.Fatalf("result = %v", d)
	}
	results := d["results"].([]any)
	wfID := rows(t, results[0].(map[string]any))[0]["id"]
	if got := scalar(t, cs, "SELECT w.name FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id WHERE s.step_name = 'discover'"); got != "research-pipeline" {
		t.Fatalf("step not linked to the workflow: %q", got)
	}
	_ = wfID

	// "as" names a value explicitly.
	ok(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "params": []any{"named"}, "as": "wf"},
		map[string]any{"sql": "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, 'one'), ($1, 'two')", "params": []any{"{wf}"}},
	}})
	if got := scalar(t, cs, "SELECT count(*) FROM workflow_steps s JOIN workflows w ON w.id = s.workflow_id WHERE w.name = 'named'"); got != "2" {
		t.Fatalf("steps of 'named' = %s", got)
	}

	before := scalar(t, cs, "SELECT count(*) FROM workflows")
	// An unresolved reference: clear error naming it, nothing committed.
	fails(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "params": []any{"lost-1"}},
		map[string]any{"sql": "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", "params": []any{"{nothing_here}", "x"}},
	}}, "{nothing_here}", "nothing was committed")
	// A failing statement rolls back the earlier ones.
	fails(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1)", "params": []any{"lost-2"}},
		map[string]any{"sql": "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", "params": []any{"no-such-workflow", "x"}},
	}}, "statements[1]", "foreign key", "nothing was committed")
	if after := scalar(t, cs, "SELECT count(*) FROM workflows"); after != before {
		t.Fatalf("failed transactions left rows behind: %s -> %s", before, after)
	}
	// Transaction control inside is refused before anything runs.
	fails(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ('lost-3')"},
		map[string]any{"sql": "COMMIT"},
	}}, "statements[1]")
	if after := scalar(t, cs, "SELECT count(*) FROM workflows"); after != before {
		t.Fatalf("refused transaction left rows behind: %s -> %s", before, after)
	}
}

func TestBadArgumentsGetClearToolErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	cs := stdioClient(t, db)
	tests := []struct {
		tool  string
		args  map[string]any
		wants []string
	}{
		{"query", map[string]any{}, []string{`missing argument "sql"`, "query takes sql and optionally params"}},
		{"query", map[string]any{"sql": "   "}, []string{"sql is required"}},
		{"query", map[string]any{"sql": 5}, []string{"sql"}},
		{"query", map[string]any{"sql": "SELECT 1", "parms": []any{1}}, []string{`unknown argument "parms" (did you mean "params"?)`}},
		{"query", map[string]any{"sql": "SELECT $1::int", "params": "1"}, []string{"params"}},
		{"query", map[string]any{"sql": "SELECT $1::int, $2::int", "params": []any{1}}, []string{"parameter"}},
		{"query", map[string]any{"sql": "SELECT $1::int", "params": []any{"abc"}}, []string{"invalid input syntax", "22P02"}},
		{"query", map[string]any{"sql": "SELEC 1"}, []string{"syntax error"}},
		{"query", map[string]any{"sql": "SELECT * FROM nope"}, []string{"nope", "does not exist"}},
		{"query", map[string]any{"sql": "SELECT nope FROM agents"}, []string{"nope", "describe_table", `at character 8, near "SELECT nope FROM agents"`}},
		{"execute", map[string]any{}, []string{`missing argument "sql"`}},
		{"execute", map[string]any{"sql": "INSERT INTO agents (agent_id) VALUES ($1)", "params": []any{"x"}}, []string{"not-null", "template"}},
		{"transaction", map[string]any{}, []string{"statements"}},
		{"transaction", map[string]any{"statements": []any{}}, []string{"statements is empty"}},
		{"transaction", map[string]any{"statements": []any{map[string]any{"sql": ""}}}, []string{"statements[0]", "sql is required"}},
		{"transaction", map[string]any{"statements": "INSERT"}, []string{"statements"}},
		{"describe_table", map[string]any{}, []string{"table"}},
		{"describe_table", map[string]any{"table": "workflow"}, []string{"workflow", "workflows"}},
		{"list_tables", map[string]any{"schema": "nope"}, []string{"nope"}},
		{"get_indexes", map[string]any{"table": "missing_table"}, []string{"missing_table"}},
		{"get_foreign_keys", map[string]any{"table": 7}, []string{"table"}},
		{"find_relationships", map[string]any{"table": "x\"; DROP TABLE agents; --"}, []string{"does not exist"}},
		{"vector_search", map[string]any{"table": "agents"}, []string{"embedding_column"}},
		{"vector_search", map[string]any{"table": "agents", "embedding_column": "template", "query_embedding": []any{1}, "limit": 5000}, []string{"limit"}},
		{"list_schemas", map[string]any{"bogus": 1}, []string{"bogus"}},
		{"server_info", map[string]any{"verbose": true}, []string{"verbose"}},
		{"db_identity", map[string]any{"x": 1}, []string{"x"}},
		{"list_tables", map[string]any{"exact": "yes"}, []string{`argument "exact" must be a boolean`, "list_tables takes optionally schema, exact"}},
		{"insert_vector", map[string]any{"table": "agents", "embedding_column": "template", "embedding": []any{1}}, []string{"not a vector"}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %v", tc.tool, tc.args), func(t *testing.T) {
			fails(t, cs, tc.tool, tc.args, tc.wants...)
		})
	}
	// Nothing of the above hurt the table.
	if got := scalar(t, cs, "SELECT count(*) FROM agents"); got != "0" {
		t.Errorf("agents rows = %s", got)
	}
}
