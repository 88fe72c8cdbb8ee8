package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// permFixtures is a database with something to protect: secrets (and a view and a function
// that read them), harmless notes, a small vector table and a private schema.
const permFixtures = `
CREATE TABLE public.secrets (id int PRIMARY KEY, secret text NOT NULL);
INSERT INTO public.secrets VALUES (1, 'launch-code-4242');
CREATE TABLE public.notes (id int PRIMARY KEY, body text NOT NULL);
INSERT INTO public.notes VALUES (1, 'hello'), (2, 'world');
CREATE TABLE public.docs (id serial PRIMARY KEY, body text, embedding vector(3));
INSERT INTO public.docs (body, embedding) VALUES ('first', '[1,0,0]'), ('second', '[0,1,0]');
CREATE VIEW public.secret_view AS SELECT id, secret FROM public.secrets;
CREATE FUNCTION public.leak() RETURNS SETOF text LANGUAGE sql STABLE AS 'SELECT secret FROM public.secrets';
CREATE FUNCTION public.safe_double(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 * 2';
CREATE SCHEMA private;
CREATE TABLE private.stuff (id int);
INSERT INTO private.stuff VALUES (7);
`

const permYAML = `
roles:
  reader:
    toolsets: [generic, checkpoint]
    tools_deny: [execute, transaction]
    operations: [read]
    tables: ["public.*", "pg_catalog.*"]
    tables_deny: ["public.secrets", "pg_catalog.pg_authid"]
    functions: ["public.safe_*"]
  cautious:
    description: like reader, but what the view over secrets shows is denied too
    toolsets: [generic]
    operations: [read]
    tables: ["public.*"]
    tables_deny: ["public.secret*"]
  writer:
    toolsets: ["*"]
    operations: [read, write]
    tables: ["public.*", "pg_catalog.*"]
    tables_deny: ["public.secrets"]
  admin:
    toolsets: ["*"]
    operations: [read, write, ddl]
    tables: ["*"]
    functions: ["*"]
  narrow:
    tools: [query]
    operations: [read]
    tables: ["public.notes"]
`

// permDB is a test database with permFixtures and a permissions file (permYAML unless given). cairn
// reaches it as a role that is not a superuser (testdb.AppRole), as docs/deploy.md recommends: what
// permissions do not cover, that role's privileges bound.
func permDB(t *testing.T, yaml string) (*testdb.DB, string) {
	t.Helper()
	db := testdb.NewApp(t)
	if _, err := db.Pool.Exec(context.Background(), permFixtures); err != nil {
		t.Fatal(err)
	}
	if yaml == "" {
		yaml = permYAML
	}
	file := filepath.Join(t.TempDir(), "permissions.yaml")
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return db, file
}

// permCase is one call under a role: want nil means it must succeed (and check, if set, looks
// at its result); otherwise it must fail with a tool error mentioning every one of want.
type permCase struct {
	name  string
	tool  string
	args  map[string]any
	want  []string
	check func(t *testing.T, data map[string]any)
}

func runPermCases(t *testing.T, cs *sdk.ClientSession, cases []permCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.want == nil {
				d := ok(t, cs, c.tool, c.args)
				if c.check != nil {
					c.check(t, d)
				}
				return
			}
			fails(t, cs, c.tool, c.args, c.want...)
		})
	}
}

func sql(s string, params ...any) map[string]any {
	m := map[string]any{"sql": s}
	if len(params) > 0 {
		m["params"] = params
	}
	return m
}

// wantRows checks a query result holds exactly the values of column col, in order.
func wantRows(col string, vals ...string) func(*testing.T, map[string]any) {
	return func(t *testing.T, d map[string]any) {
		t.Helper()
		var got []string
		for _, r := range rows(t, d) {
			got = append(got, fmt.Sprint(r[col]))
		}
		if !slices.Equal(got, vals) {
			t.Errorf("%s = %q, want %q", col, got, vals)
		}
	}
}

const deniedSecrets = `role "reader" may not read table public.secrets`

// TestPermissionsReader runs the reader role over stdio, as a local agent would get it: it reads
// public tables, and no shape of statement reaches the secrets table.
func TestPermissionsReader(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	cs := stdioClient(t, db, "--permissions", file, "--role", "reader")
	vec := []any{1, 0, 0}
	runPermCases(t, cs, []permCase{
		{name: "public table", tool: "query", args: sql("SELECT body FROM notes ORDER BY id"), check: wantRows("body", "hello", "world")},
		{name: "qualified, builtins, catalog", tool: "query", args: sql("SELECT upper(n.body) AS b, (SELECT count(*) FROM pg_class) > 0 AS c FROM public.notes n WHERE n.id = $1", 1),
			check: wantRows("b", "HELLO")},
		{name: "listed function", tool: "query", args: sql("SELECT safe_double(21) AS x"), check: wantRows("x", "42")},
		{name: "CTE of its own name", tool: "query", args: sql("WITH secrets AS (SELECT 'not really' AS s) SELECT s FROM secrets"), check: wantRows("s", "not really")},
		{name: "view over secrets", tool: "query", args: sql("SELECT secret FROM secret_view"),
			// Views count as their own name (as PostgreSQL's privileges do): a view is how a role
			// is given part of a table, so a view over a denied table must be denied itself (cautious).
			check: wantRows("secret", "launch-code-4242")},

		{name: "direct", tool: "query", args: sql("SELECT * FROM secrets"), want: []string{deniedSecrets, "tables_deny lists public.secrets", "permissions file "}},
		{name: "qualified", tool: "query", args: sql(`SELECT * FROM "public"."secrets"`), want: []string{deniedSecrets}},
		{name: "TABLE", tool: "query", args: sql("TABLE secrets"), want: []string{deniedSecrets}},
		{name: "JOIN", tool: "query", args: sql("SELECT n.body FROM notes n JOIN secrets s ON s.id = n.id"), want: []string{deniedSecrets, "(reached through a JOIN)"}},
		{name: "comma join", tool: "query", args: sql("SELECT n.body FROM notes n, secrets s WHERE s.id = n.id"), want: []string{deniedSecrets, "a JOIN"}},
		{name: "CTE", tool: "query", args: sql("WITH s AS (SELECT * FROM secrets) SELECT * FROM s"), want: []string{deniedSecrets, `(reached through a CTE "s")`}},
		{name: "nested CTE", tool: "query", args: sql("WITH a AS (WITH b AS (SELECT secret FROM secrets) SELECT * FROM b) SELECT * FROM a"),
			want: []string{deniedSecrets, `a CTE "b" in a CTE "a"`}},
		{name: "subquery", tool: "query", args: sql("SELECT body FROM notes WHERE id IN (SELECT id FROM secrets)"), want: []string{deniedSecrets, "(reached through a subquery)"}},
		{name: "scalar subquery", tool: "query", args: sql("SELECT (SELECT secret FROM secrets LIMIT 1) AS s"), want: []string{deniedSecrets, "a subquery"}},
		{name: "LATERAL", tool: "query", args: sql("SELECT * FROM notes n, LATERAL (SELECT secret FROM secrets s WHERE s.id = n.id) x"), want: []string{deniedSecrets, "a subquery in a JOIN"}},
		{name: "UNION", tool: "query", args: sql("SELECT body FROM notes UNION SELECT secret FROM secrets"), want: []string{deniedSecrets, "(reached through a UNION)"}},
		{name: "EXPLAIN", tool: "query", args: sql("EXPLAIN SELECT * FROM secrets"), want: []string{deniedSecrets}},
		{name: "function reading it", tool: "query", args: sql("SELECT * FROM leak()"),
			want: []string{`role "reader" may not call function public.leak`, "functions list"}},
		{name: "function in a subquery", tool: "query", args: sql("SELECT body FROM notes WHERE body IN (SELECT leak())"),
			want: []string{"function public.leak (reached through a subquery)"}},
		{name: "SQL text in a builtin", tool: "query", args: sql("SELECT query_to_xml('select * from secrets', true, true, '')"),
			want: []string{"function pg_catalog.query_to_xml", "reads data named in its arguments"}},
		{name: "other schema", tool: "query", args: sql("SELECT * FROM private.stuff"),
			want: []string{`role "reader" may not read table private.stuff`, "not in the role's tables"}},
		{name: "catalog table denied", tool: "query", args: sql("SELECT rolname FROM pg_authid"), want: []string{"table pg_catalog.pg_authid"}},

		{name: "execute denied", tool: "execute", args: sql("INSERT INTO notes VALUES (3, 'x')"), want: []string{`role "reader" may not call execute`, "tools_deny lists it"}},
		{name: "transaction denied", tool: "transaction", args: map[string]any{"statements": []any{sql("DELETE FROM notes")}}, want: []string{"may not call transaction"}},
		{name: "insert_vector", tool: "insert_vector", args: map[string]any{"table": "docs", "columns": map[string]any{"body": "x"}, "embedding_column": "embedding", "embedding": vec},
			want: []string{`role "reader" may not write: insert_vector needs operation write`}},
		{name: "write through query", tool: "query", args: sql("DELETE FROM notes"), want: []string{"read-only"}},

		{name: "describe public", tool: "describe_table", args: map[string]any{"table": "notes"}, check: func(t *testing.T, d map[string]any) {
			if d["table"] != "notes" {
				t.Errorf("describe_table = %v", d)
			}
		}},
		{name: "describe secrets", tool: "describe_table", args: map[string]any{"table": "secrets"}, want: []string{deniedSecrets}},
		{name: "indexes of secrets", tool: "get_indexes", args: map[string]any{"table": "public.secrets"}, want: []string{deniedSecrets}},
		{name: "relationships of private", tool: "find_relationships", args: map[string]any{"schema": "private", "table": "stuff"}, want: []string{"private.stuff"}},
		{name: "list public", tool: "list_tables", args: map[string]any{}, check: func(t *testing.T, d map[string]any) {
			if ts, _ := d["tables"].([]any); len(ts) < 3 {
				t.Errorf("list_tables = %v", d)
			}
		}},
		{name: "list private", tool: "list_tables", args: map[string]any{"schema": "private"}, want: []string{"may not list schema private"}},
		{name: "vector_search", tool: "vector_search", args: map[string]any{"table": "docs", "embedding_column": "embedding", "query_embedding": vec, "limit": 1},
			check: wantRows("body", "first")},
		{name: "vector_search on secrets", tool: "vector_search", args: map[string]any{"table": "secrets", "embedding_column": "embedding", "query_embedding": vec},
			want: []string{deniedSecrets}},
		{name: "vector_search where_clause", tool: "vector_search", args: map[string]any{"table": "docs", "embedding_column": "embedding", "query_embedding": vec,
			"where_clause": "body IN (SELECT secret FROM secrets)"}, want: []string{deniedSecrets, "a subquery in where_clause"}},
		{name: "vector_search where_clause function", tool: "vector_search", args: map[string]any{"table": "docs", "embedding_column": "embedding", "query_embedding": vec,
			"where_clause": "body IN (SELECT leak())"}, want: []string{"function public.leak"}},

		{name: "checkpoint read", tool: "workflow_list", args: map[string]any{}, check: func(t *testing.T, d map[string]any) {
			if _, has := d["workflows"]; !has {
				t.Errorf("workflow_list = %v", d)
			}
		}},
		{name: "checkpoint write", tool: "workflow_start", args: map[string]any{"name": "x"}, want: []string{`role "reader" may not write: workflow_start needs operation write`}},
		{name: "toolset not granted", tool: "agent_list", args: map[string]any{}, want: []string{`role "reader" may not call agent_list`, "toolsets (generic, checkpoint)", "toolset agents"}},
	})

	// The tool list shows only what the role may call.
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tl := range res.Tools {
		names = append(names, tl.Name)
	}
	for _, want := range []string{"query", "describe_table", "workflow_get"} {
		if !slices.Contains(names, want) {
			t.Errorf("tools/list lacks %s: %v", want, names)
		}
	}
	for _, hidden := range []string{"execute", "transaction", "agent_list", "knowledge_search", "insert_vector", "workflow_start"} {
		if slices.Contains(names, hidden) {
			t.Errorf("tools/list shows %s, which the role may not call", hidden)
		}
	}
	// Resources are the tools they mirror.
	if _, err := cs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "cairn://tables/public/secrets"}); err == nil || !strings.Contains(err.Error(), deniedSecrets) {
		t.Errorf("reading the secrets table's resource: %v", err)
	}
	if r, err := cs.ReadResource(context.Background(), &sdk.ReadResourceParams{URI: "cairn://tables/public/notes"}); err != nil || !strings.Contains(r.Contents[0].Text, "body") {
		t.Errorf("reading the notes table's resource: %v", err)
	}
	// Nothing was written.
	var n int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM notes").Scan(&n); err != nil || n != 2 {
		t.Errorf("notes = %d, %v", n, err)
	}
}

// TestPermissionsWriter: writes to allowed tables, no DDL, and no reading of the secrets through
// the parts of a write.
func TestPermissionsWriter(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	cs := stdioClient(t, db, "--permissions", file, "--role", "writer")
	affected := func(n int) func(*testing.T, map[string]any) {
		return func(t *testing.T, d map[string]any) {
			if fmt.Sprint(d["rows_affected"]) != fmt.Sprint(n) {
				t.Errorf("rows_affected = %v, want %d (%v)", d["rows_affected"], n, d)
			}
		}
	}
	const deniedW = `role "writer" may not read table public.secrets`
	runPermCases(t, cs, []permCase{
		{name: "insert", tool: "execute", args: sql("INSERT INTO notes VALUES ($1, $2)", 3, "three"), check: affected(1)},
		{name: "update", tool: "execute", args: sql("UPDATE notes SET body = upper(body) WHERE id = 3"), check: affected(1)},
		{name: "INSERT … SELECT", tool: "execute", args: sql("INSERT INTO notes SELECT id + 10, secret FROM secrets"), want: []string{deniedW, "(reached through INSERT … SELECT)"}},
		{name: "UPDATE … FROM", tool: "execute", args: sql("UPDATE notes n SET body = s.secret FROM secrets s WHERE s.id = n.id"), want: []string{deniedW, "UPDATE … FROM"}},
		{name: "DELETE … USING", tool: "execute", args: sql("DELETE FROM notes n USING secrets s WHERE s.id = n.id"), want: []string{deniedW, "DELETE … USING"}},
		{name: "data-modifying CTE", tool: "execute", args: sql("WITH d AS (DELETE FROM secrets RETURNING *) SELECT count(*) FROM d"),
			want: []string{`role "writer" may not write table public.secrets`, `a CTE "d"`}},
		{name: "write the secrets", tool: "execute", args: sql("UPDATE secrets SET secret = 'x'"), want: []string{`role "writer" may not write table public.secrets`}},
		{name: "RETURNING from subquery", tool: "execute", args: sql("INSERT INTO notes VALUES (20, 'x') RETURNING (SELECT secret FROM secrets LIMIT 1)"), want: []string{deniedW}},
		{name: "CREATE TABLE", tool: "execute", args: sql("CREATE TABLE t (id int)"), want: []string{`role "writer" may not change the schema (ddl): CREATE TABLE needs operation ddl`}},
		{name: "DROP TABLE", tool: "execute", args: sql("DROP TABLE notes"), want: []string{"DROP TABLE needs operation ddl"}},
		{name: "ALTER TABLE", tool: "execute", args: sql("ALTER TABLE notes ADD COLUMN x int"), want: []string{"needs operation ddl"}},
		{name: "DO", tool: "execute", args: sql("DO $$ BEGIN DELETE FROM secrets; END $$"), want: []string{"DO needs operation ddl"}},
		{name: "TRUNCATE", tool: "execute", args: sql("TRUNCATE secrets"), want: []string{"may not write table public.secrets"}},
		{name: "function", tool: "execute", args: sql("INSERT INTO notes SELECT 30, leak()"), want: []string{"may not call function public.leak"}},
		{name: "transaction", tool: "transaction", args: map[string]any{"statements": []any{
			sql("INSERT INTO notes VALUES (4, 'four') RETURNING id"), sql("UPDATE notes SET body = 'FOUR' WHERE id = $1", "{id}")}},
			check: func(t *testing.T, d map[string]any) {
				if d["committed"] != true {
					t.Errorf("transaction = %v", d)
				}
			}},
		{name: "transaction touching secrets", tool: "transaction", args: map[string]any{"statements": []any{
			sql("INSERT INTO notes VALUES (5, 'five')"), sql("DELETE FROM secrets")}},
			want: []string{"statements[1]", "may not write table public.secrets", "nothing was run"}},
		{name: "insert_vector", tool: "insert_vector", args: map[string]any{"table": "docs", "columns": map[string]any{"body": "third"}, "embedding_column": "embedding", "embedding": []any{0, 0, 1}},
			check: affected(1)},
		{name: "domain write", tool: "workflow_start", args: map[string]any{"name": "pipeline"}, check: func(t *testing.T, d map[string]any) {
			if d["status"] != "running" {
				t.Errorf("workflow_start = %v", d)
			}
		}},
		{name: "read", tool: "query", args: sql("SELECT body FROM notes ORDER BY id"), check: wantRows("body", "hello", "world", "THREE", "FOUR")},
	})
	var n int
	if err := db.Pool.QueryRow(context.Background(), "SELECT count(*) FROM notes WHERE id = 5").Scan(&n); err != nil || n != 0 {
		t.Errorf("the refused transaction's first statement ran: %d, %v", n, err)
	}
	var secret string
	if err := db.Pool.QueryRow(context.Background(), "SELECT secret FROM secrets").Scan(&secret); err != nil || secret != "launch-code-4242" {
		t.Errorf("secret = %q, %v", secret, err)
	}
}

// TestPermissionsAdminNarrowCautious: admin may do anything; narrow is held to one tool and one
// table; cautious denies the view over the secrets too; without a role nothing runs.
func TestPermissionsAdminNarrowCautious(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	t.Run("admin", func(t *testing.T) {
		cs := stdioClient(t, db, "--permissions", file, "--role", "admin")
		runPermCases(t, cs, []permCase{
			{name: "secrets", tool: "query", args: sql("SELECT secret FROM secrets"), check: wantRows("secret", "launch-code-4242")},
			{name: "function", tool: "query", args: sql("SELECT * FROM leak() AS s(secret)"), check: wantRows("secret", "launch-code-4242")},
			{name: "other schema", tool: "query", args: sql("SELECT id FROM private.stuff"), check: wantRows("id", "7")},
			{name: "DDL", tool: "execute", args: sql("CREATE TABLE private.more (id int)"), check: func(t *testing.T, d map[string]any) {
				if d["command"] != "CREATE TABLE" {
					t.Errorf("execute = %v", d)
				}
			}},
			{name: "DROP", tool: "execute", args: sql("DROP TABLE private.more")},
			{name: "agents", tool: "agent_list", args: map[string]any{}},
		})
	})
	t.Run("narrow", func(t *testing.T) {
		cs := stdioClient(t, db, "--permissions", file, "--role", "narrow")
		runPermCases(t, cs, []permCase{
			{name: "its table", tool: "query", args: sql("SELECT body FROM notes WHERE id = 1"), check: wantRows("body", "hello")},
			{name: "another public table", tool: "query", args: sql("SELECT * FROM docs"), want: []string{`role "narrow" may not read table public.docs`, "not in the role's tables (public.notes)"}},
			{name: "the catalog", tool: "query", args: sql("SELECT count(*) FROM pg_class"), want: []string{"table pg_catalog.pg_class"}},
			{name: "another tool", tool: "list_tables", args: map[string]any{}, want: []string{`role "narrow" may not call list_tables`}},
		})
	})
	t.Run("cautious", func(t *testing.T) {
		cs := stdioClient(t, db, "--permissions", file, "--role", "cautious")
		runPermCases(t, cs, []permCase{
			{name: "view", tool: "query", args: sql("SELECT * FROM secret_view"), want: []string{`role "cautious" may not read table public.secret_view`, "tables_deny lists public.secret*"}},
			{name: "notes", tool: "query", args: sql("SELECT body FROM notes WHERE id = 2"), check: wantRows("body", "world")},
		})
	})
	t.Run("no role", func(t *testing.T) {
		cs := stdioClient(t, db, "--permissions", file)
		fails(t, cs, "query", sql("SELECT 1"), "no role", "--role", "default_role")
	})
	t.Run("default role", func(t *testing.T) {
		_, withDefault := permDB(t, "default_role: narrow\n"+permYAML)
		cs := stdioClient(t, db, "--permissions", withDefault)
		fails(t, cs, "list_tables", map[string]any{}, `role "narrow" may not call list_tables`)
		ok(t, cs, "query", sql("SELECT 1 AS x FROM notes LIMIT 1"))
	})
}

// TestPermissionsFileErrors: a bad file or role stops cairn before it serves.
func TestPermissionsFileErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("roles:\n  reader:\n    toolsets: [generic]\n    operations: [read, wirte]\n    tables: [workflows]\n"), 0o600)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte(permYAML), 0o600)
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--permissions", bad}, []string{"bad.yaml:4", `role "reader": operations: unknown operation "wirte"`, "bad.yaml:5", `"workflows" is not schema.name`}},
		{[]string{"--permissions", good, "--role", "root"}, []string{`--role "root" is not a role`, "admin, cautious, narrow, reader, writer"}},
		{[]string{"--role", "reader"}, []string{"--role", "--permissions"}},
		{[]string{"--permissions", filepath.Join(dir, "missing.yaml")}, []string{"missing.yaml"}},
	} {
		cmd := exec.Command(cairnBin, append([]string{"serve", "--database-url", "postgres://nowhere.invalid/x"}, c.args...)...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 {
			t.Errorf("%v: exit %v, want 2\n%s", c.args, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%v: output does not mention %q:\n%s", c.args, w, out)
			}
		}
	}
}

// TestToolPermsCoverEveryTool: every tool cairn registers has an entry in the permission table
// under the toolset that registers it, and is audited exactly when it is not read-only.
func TestToolPermsCoverEveryTool(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	known := mcp.KnownTools()
	for _, ts := range config.Toolsets {
		var buf testbin.Logs
		srv := permServer(t, db, &config.Config{Toolsets: []string{ts}}, nil, &buf)
		cs := inMemoryClient(t, srv)
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, tl := range res.Tools {
			if known[tl.Name] != ts {
				t.Errorf("tool %s of toolset %s: the permission table says %q", tl.Name, ts, known[tl.Name])
			}
			// Calling with no arguments fails fast for most tools; what matters is the audit.
			call(t, cs, tl.Name, map[string]any{})
			audited := len(auditLines(t, buf.String(), tl.Name)) > 0
			if audited == tl.Annotations.ReadOnlyHint {
				t.Errorf("tool %s (readOnlyHint %v): audited = %v", tl.Name, tl.Annotations.ReadOnlyHint, audited)
			}
		}
	}
}

// permServer builds an in-process server with permissions, logging JSON to log.
func permServer(t *testing.T, db *testdb.DB, cfg *config.Config, set *permissions.Set, log io.Writer) *mcp.Server {
	t.Helper()
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	// Debug level: no level may log what the audit must not.
	logger := slog.New(slog.NewJSONHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	run, err := sqlexec.New(context.Background(), db.Pool, sqlexec.Options{MaxRows: cfg.MaxRows, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.New(mcp.Options{Config: cfg, Pool: db.Pool, Runner: run, Logger: logger, Version: "test", Permissions: set})
	t.Cleanup(srv.Close)
	return srv
}

func inMemoryClient(t *testing.T, srv *mcp.Server) *sdk.ClientSession {
	t.Helper()
	ct, st := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ss.Close() })
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// connectBearer connects over Streamable HTTP with a bearer token.
func connectBearer(t *testing.T, baseURL, token string) *sdk.ClientSession {
	t.Helper()
	tr := &sdk.StreamableClientTransport{Endpoint: baseURL + "/mcp", HTTPClient: &http.Client{Transport: bearer{token}}}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect with a token: %v", err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// auditLines returns the audit records of a JSON log for a tool ("" for every tool).
func auditLines(t *testing.T, log, tool string) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil || m["msg"] != "audit" {
			continue
		}
		if tool == "" || m["tool"] == tool {
			out = append(out, m)
		}
	}
	return out
}

var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{16}$`)

// TestAuditLog: the role comes from the caller's token; every write call gets one audit line
// naming who, the tool, the statement's fingerprint and redacted text and the rows affected;
// read-only calls get none; literals and parameter values appear nowhere in the log, and with
// --audit-events the same records land in the event log.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	set, err := permissions.Load(file, mcp.KnownTools())
	if err != nil {
		t.Fatal(err)
	}
	var buf testbin.Logs
	cfg := &config.Config{Transport: config.TransportHTTP, AuditEvents: true,
		AuthTokens: "alice:writer:tok-alice-1234567890,bob:reader:tok-bob-1234567890"}
	ts := httptest.NewServer(permServer(t, db, cfg, set, &buf).Handler())
	t.Cleanup(ts.Close)
	alice := connectBearer(t, ts.URL, "tok-alice-1234567890")
	bob := connectBearer(t, ts.URL, "tok-bob-1234567890")

	const literal, param, jsonSecret = "hunter2-literal", "param-secret-value", "state-secret-value"
	ok(t, alice, "execute", sql("INSERT INTO notes (id, body) VALUES ($1, '"+literal+"' || $2) /* "+literal+" */", 10, param))
	ok(t, alice, "query", sql("SELECT body FROM notes WHERE body = $1 OR body = '"+literal+"'", param))
	ok(t, alice, "transaction", map[string]any{"statements": []any{
		sql("UPDATE notes SET body = $1 WHERE id = 10", param), sql("DELETE FROM notes WHERE body = '" + literal + "' OR id IN (1, 2)")}})
	fails(t, alice, "execute", sql("UPDATE secrets SET secret = '"+literal+"'"), "may not write table public.secrets")
	ok(t, alice, "workflow_start", map[string]any{"name": "audited", "input": map[string]any{"password": jsonSecret}})
	fails(t, bob, "execute", sql("INSERT INTO notes VALUES (11, '"+literal+"')"), `role "reader" may not call execute`)
	fails(t, alice, "execute", sql("INSERT INTO notes VALUES (12, $1), (12, $1)", param), "duplicate key")
	fails(t, alice, "execute", sql("INSERT INTO notes VALUES ($1, 'x')", param), "invalid input syntax", param) // PostgreSQL quotes the value

	log := buf.String()
	for _, secret := range []string{literal, param, jsonSecret, "tok-alice", "tok-bob"} {
		if strings.Contains(log, secret) {
			t.Errorf("the log holds %q:\n%s", secret, log)
		}
	}
	if got := auditLines(t, log, "query"); len(got) != 0 {
		t.Errorf("read-only query audited: %v", got)
	}
	all := auditLines(t, log, "")
	if len(all) != 7 {
		t.Fatalf("audit lines = %d, want 7:\n%s", len(all), log)
	}
	want := []struct {
		tool, user, role, outcome, denied string
		statements                        int
		rows                              any
		statement                         string
	}{
		{"execute", "alice", "writer", "ok", "", 1, 1.0, "INSERT INTO notes (id, body) VALUES ($1, $3 || $2)"},
		{"transaction", "alice", "writer", "ok", "", 2, 3.0, "UPDATE notes SET body = $1 WHERE id = $2; DELETE FROM notes WHERE body = $1 OR id IN ($2, $3)"},
		{"execute", "alice", "writer", "tool_error", "table public.secrets", 1, nil, "UPDATE secrets SET secret = $1"},
		{"workflow_start", "alice", "writer", "ok", "", 0, nil, ""},
		{"execute", "bob", "reader", "tool_error", "tool execute", 0, nil, ""},
		{"execute", "alice", "writer", "tool_error", "", 1, nil, "INSERT INTO notes VALUES ($2, $1), ($3, $1)"},
		{"execute", "alice", "writer", "tool_error", "", 1, nil, "INSERT INTO notes VALUES ($1, $2)"},
	}
	for i, w := range want {
		a := all[i]
		if a["tool"] != w.tool || a["user"] != w.user || a["role"] != w.role || a["outcome"] != w.outcome || a["transport"] != "http" {
			t.Errorf("audit %d = %v, want %s by %s (%s) %s over http", i, a, w.tool, w.user, w.role, w.outcome)
		}
		if fmt.Sprint(a["denied"]) != fmt.Sprint(orNil(w.denied)) {
			t.Errorf("audit %d denied = %v, want %q", i, a["denied"], w.denied)
		}
		if fmt.Sprint(a["rows_affected"]) != fmt.Sprint(w.rows) {
			t.Errorf("audit %d rows_affected = %v, want %v", i, a["rows_affected"], w.rows)
		}
		if w.statements == 0 {
			if _, has := a["fingerprint"]; has {
				t.Errorf("audit %d has statements: %v", i, a)
			}
			continue
		}
		if fmt.Sprint(a["statements"]) != fmt.Sprint(w.statements) || a["statement"] != w.statement {
			t.Errorf("audit %d statements = %v %q, want %d %q", i, a["statements"], a["statement"], w.statements, w.statement)
		}
		for _, fp := range strings.Split(fmt.Sprint(a["fingerprint"]), ",") {
			if !fingerprintRE.MatchString(fp) {
				t.Errorf("audit %d fingerprint %q", i, a["fingerprint"])
			}
		}
		if d, ok := a["duration_ms"].(float64); !ok || d <= 0 {
			t.Errorf("audit %d duration_ms = %v", i, a["duration_ms"])
		}
	}
	if all[0]["tables"] != "notes" || all[1]["tables"] != "notes" {
		t.Errorf("tables = %v, %v", all[0]["tables"], all[1]["tables"])
	}

	// Over SSE the role comes from the token too.
	sse, err := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil).Connect(context.Background(),
		&sdk.SSEClientTransport{Endpoint: ts.URL + "/sse", HTTPClient: &http.Client{Transport: bearer{"tok-bob-1234567890"}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer sse.Close()
	fails(t, sse, "execute", sql("DELETE FROM notes"), `role "reader" may not call execute`)
	ok(t, sse, "query", sql("SELECT count(*) FROM notes"))
	fails(t, sse, "query", sql("SELECT * FROM secrets"), deniedSecrets)
	if got := auditLines(t, buf.String(), ""); len(got) != 8 || got[7]["user"] != "bob" || got[7]["transport"] != "sse" || got[7]["denied"] != "tool execute" {
		t.Errorf("audit of the SSE call = %v", got[len(got)-1])
	}

	// --audit-events: the same records, as events on each user's stream.
	var events []string
	rows, err := db.Pool.Query(context.Background(), "SELECT stream_id, type, data::text FROM events WHERE stream_id LIKE 'audit:%' ORDER BY position")
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var stream, typ, data string
		if err := rows.Scan(&stream, &typ, &data); err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{literal, param, jsonSecret} {
			if strings.Contains(data, secret) {
				t.Errorf("audit event holds %q: %s", secret, data)
			}
		}
		var rec map[string]any
		json.Unmarshal([]byte(data), &rec)
		events = append(events, fmt.Sprintf("%s %s %v %v", stream, typ, rec["tool"], rec["outcome"]))
	}
	wantEvents := []string{
		"audit:alice AuditedToolCall execute ok", "audit:alice AuditedToolCall transaction ok", "audit:alice AuditedToolCall execute tool_error",
		"audit:alice AuditedToolCall workflow_start ok", "audit:bob AuditedToolCall execute tool_error", "audit:alice AuditedToolCall execute tool_error",
		"audit:alice AuditedToolCall execute tool_error", "audit:bob AuditedToolCall execute tool_error",
	}
	if !slices.Equal(events, wantEvents) {
		t.Errorf("audit events\n got %q\nwant %q", events, wantEvents)
	}
}

func orNil(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// TestAuditLogStdio: the real binary's stderr carries the audit line for a write over stdio,
// with the local user, and no literal of the statement.
func TestAuditLogStdio(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	cmd := exec.Command(cairnBin, "--log-format", "json", "serve", "--database-url", db.URL, "--permissions", file, "--role", "writer")
	cmd.Env = cleanEnv()
	var stderr testbin.Logs
	cmd.Stderr = &stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil).Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, stderr.String())
	}
	ok(t, cs, "execute", sql("INSERT INTO notes VALUES (7, 'hunter2-stdio')"))
	ok(t, cs, "query", sql("SELECT 1 AS x"))
	cs.Close()
	cmd.Wait()
	log := stderr.String()
	if strings.Contains(log, "hunter2-stdio") {
		t.Errorf("the log holds the literal:\n%s", log)
	}
	lines := auditLines(t, log, "")
	if len(lines) != 1 {
		t.Fatalf("audit lines = %d, want 1:\n%s", len(lines), log)
	}
	a := lines[0]
	if a["tool"] != "execute" || a["role"] != "writer" || a["transport"] != "stdio" || !strings.HasPrefix(fmt.Sprint(a["user"]), "local") ||
		a["statement"] != "INSERT INTO notes VALUES ($1, $2)" || fmt.Sprint(a["rows_affected"]) != "1" || !fingerprintRE.MatchString(fmt.Sprint(a["fingerprint"])) {
		t.Errorf("audit line = %v", a)
	}
}

// TestPermissionsOffByDefault: without a permissions file nothing is refused, and writes are
// still audited.
func TestPermissionsOffByDefault(t *testing.T) {
	t.Parallel()
	db, _ := permDB(t, "")
	var buf testbin.Logs
	cs := inMemoryClient(t, permServer(t, db, &config.Config{}, nil, &buf))
	ok(t, cs, "query", sql("SELECT * FROM secrets JOIN private.stuff ON true"))
	ok(t, cs, "execute", sql("CREATE TABLE private.t (id int)"))
	lines := auditLines(t, buf.String(), "")
	if len(lines) != 1 || lines[0]["statement"] != "CREATE TABLE private.t (id int)" || lines[0]["role"] != "" || lines[0]["transport"] != "stdio" {
		t.Errorf("audit = %v", lines)
	}
}
