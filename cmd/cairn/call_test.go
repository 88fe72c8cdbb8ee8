package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// callEnv is the environment of an in-process `cairn call` on db: the built-in embedder, so no
// test depends on whether an Ollama happens to run on the machine.
func callEnv(db *testdb.DB) []string {
	return []string{"DATABASE_URL=" + db.URL, "CAIRN_EMBEDDER=builtin"}
}

// callJSON decodes what a successful `cairn call` printed.
func callJSON(t *testing.T, r cliResult) map[string]any {
	t.Helper()
	if r.Code != 0 {
		t.Fatalf("exit %d, want 0\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatalf("stdout is not a JSON object (%v):\n%s", err, r.Stdout)
	}
	return out
}

// firstRow is rows[0] of a query-shaped result.
func firstRow(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	rows, _ := out["rows"].([]any)
	if len(rows) == 0 {
		t.Fatalf("no rows in %v", out)
	}
	return rows[0].(map[string]any)
}

// runCLIStdin is runCLI with stdin.
func runCLIStdin(t *testing.T, stdin string, extra []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = append(cleanEnv(), extra...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		r.Code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run cairn: %v", err)
	}
	return r
}

func TestCallReadsAndWritesInProcess(t *testing.T) {
	db := testdb.New(t)
	env := callEnv(db)

	out := callJSON(t, runCLI(t, env, "call", "query", "sql=SELECT 1 AS x"))
	if x := firstRow(t, out)["x"]; x != json.Number("1") || out["row_count"] != json.Number("1") {
		t.Fatalf("query: %v", out)
	}

	out = callJSON(t, runCLI(t, env, "call", "execute", "sql=CREATE TABLE notes (id int PRIMARY KEY, body text, price numeric)"))
	if out["command"] != "CREATE TABLE" {
		t.Fatalf("execute: %v", out)
	}
	// --json after the tool name, values as bound parameters.
	out = callJSON(t, runCLI(t, env, "call", "execute", "--json", `{"sql": "INSERT INTO notes VALUES ($1, $2, $3)", "params": [1, "hi there", "1.10"]}`))
	if out["rows_affected"] != json.Number("1") {
		t.Fatalf("insert: %v", out)
	}
	// key=value: [1] is JSON, the SQL is not and stays a string.
	r := runCLI(t, env, "call", "query", "sql=SELECT body, price FROM notes WHERE id = ANY($1::int[])", "params=[[1]]")
	row := firstRow(t, callJSON(t, r))
	if row["body"] != "hi there" {
		t.Fatalf("read back: %v", row)
	}
	// The server's own encoding is printed: numeric keeps its digits, columns their order.
	if !strings.Contains(r.Stdout, `"price": 1.10`) || strings.Index(r.Stdout, `"body"`) > strings.Index(r.Stdout, `"price"`) {
		t.Fatalf("output is not the server's JSON:\n%s", r.Stdout)
	}

	// A knowledge write queues its embed job although call works no jobs.
	out = callJSON(t, runCLI(t, env, "call", "knowledge_add_episode", "name=deploy-1", "content=nginx deploy failed: port 80 in use", "episode_type=deployment"))
	if out["kind"] != "episode" || out["embedding"] != "pending" {
		t.Fatalf("knowledge_add_episode: %v", out)
	}
	var jobs int
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE kind = 'knowledge_embed' AND state = 'available'`).Scan(&jobs); err != nil || jobs == 0 {
		t.Fatalf("embed jobs queued: %d, %v", jobs, err)
	}

	// --json - reads the arguments from stdin.
	out = callJSON(t, runCLIStdin(t, `{"sql": "SELECT count(*) AS n FROM notes"}`, env, "call", "query", "--json", "-"))
	if firstRow(t, out)["n"] != json.Number("1") {
		t.Fatalf("--json -: %v", out)
	}
}

func TestCallFailures(t *testing.T) {
	db := testdb.New(t)
	env := callEnv(db)
	cases := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"tool error", []string{"query", "sql=SELEC 1"}, 1, []string{"syntax error"}},
		{"write refused read-only", []string{"execute", "sql=CREATE TABLE t (id int)", "--read-only"}, 1, []string{"read-only"}},
		{"arguments the tool does not take", []string{"query", "sql=SELECT 1", "limit=5"}, 1, []string{"limit"}},
		{"unknown tool", []string{"quary", "sql=SELECT 1"}, 2, []string{`no tool named "quary"`, `did you mean "query"`, "list_tables"}},
		{"not key=value", []string{"query", "SELECT 1"}, 2, []string{`"SELECT 1": want key=value`}},
		{"empty key", []string{"query", "=SELECT 1"}, 2, []string{"want key=value"}},
		{"a key twice", []string{"query", "sql=SELECT 1", "sql=SELECT 2"}, 2, []string{"given twice"}},
		{"--json and pairs", []string{"query", "--json", `{"sql": "SELECT 1"}`, "params=[]"}, 2, []string{"not both"}},
		{"--json not an object", []string{"query", "--json", `["SELECT 1"]`}, 2, []string{"one JSON object"}},
		{"no tool", nil, 2, []string{"name the tool"}},
		{"unknown flag after the tool", []string{"query", "sql=SELECT 1", "--bogus"}, 2, []string{"--bogus"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, env, append([]string{"call"}, tc.args...)...)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, tc.code, r.Stdout, r.Stderr)
			}
			for _, want := range tc.stderr {
				if !strings.Contains(r.Stderr, want) {
					t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
				}
			}
			if r.Stdout != "" {
				t.Errorf("stdout is not empty on failure:\n%s", r.Stdout)
			}
		})
	}
	if _, err := db.Pool.Exec(context.Background(), `SELECT 1 FROM t`); err == nil {
		t.Error("the read-only call created table t")
	}
}

func TestCallList(t *testing.T) {
	r := runCLI(t, callEnv(testdb.New(t)), "call", "--list")
	if r.Code != 0 {
		t.Fatalf("exit %d\n%s", r.Code, r.Stderr)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		name, desc, _ := strings.Cut(l, " ")
		lines[name] = strings.TrimSpace(desc)
	}
	if d := lines["query"]; d == "" || strings.Contains(d, "(writes)") {
		t.Errorf("query: %q", d)
	}
	if d := lines["execute"]; !strings.HasSuffix(d, "(writes)") {
		t.Errorf("execute: %q", d)
	}
	if len(lines) < 20 {
		t.Errorf("only %d tools listed:\n%s", len(lines), r.Stdout)
	}
}

// httpCairn serves an in-process cairn over HTTP (both /mcp and /sse), requiring token when set.
func httpCairn(t *testing.T, db *testdb.DB, token string) *httptest.Server {
	t.Helper()
	cfg := &config.Config{AuthToken: token}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, err := sqlexec.New(context.Background(), db.Pool, sqlexec.Options{MaxRows: cfg.MaxRows, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.New(mcp.Options{Config: cfg, Pool: db.Pool, Runner: run, Logger: log, Version: "test"})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		ts.Close()
		srv.Close()
	})
	return ts
}

func TestCallURL(t *testing.T) {
	db := testdb.New(t)
	open := httpCairn(t, db, "")
	locked := httpCairn(t, db, "s3cret")
	cases := []struct {
		name   string
		url    string
		args   []string
		env    []string
		code   int
		stderr string
	}{
		{name: "base URL: Streamable HTTP", url: open.URL},
		{name: "explicit /mcp/", url: open.URL + "/mcp/"},
		{name: "SSE", url: open.URL + "/sse"},
		{name: "no scheme", url: strings.TrimPrefix(open.URL, "http://")},
		{name: "token by flag", url: locked.URL, args: []string{"--auth-token", "s3cret"}},
		{name: "token from the environment, over SSE", url: locked.URL + "/sse", env: []string{"CAIRN_AUTH_TOKEN=s3cret"}},
		{name: "no token", url: locked.URL, code: 1, stderr: "wants a token"},
		{name: "wrong token", url: locked.URL + "/sse", args: []string{"--auth-token", "guess"}, code: 1, stderr: "refused the token"},
		{name: "nothing listening", url: "http://127.0.0.1:1/mcp", code: 1, stderr: "cannot connect to cairn at http://127.0.0.1:1/mcp"},
		{name: "not a URL", url: "ftp://x", code: 2, stderr: "want an http(s) URL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"call", "query", "sql=SELECT 41 + 1 AS answer", "--url", tc.url}, tc.args...)
			r := runCLI(t, tc.env, args...)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, tc.code, r.Stdout, r.Stderr)
			}
			if tc.code != 0 {
				if !strings.Contains(r.Stderr, tc.stderr) {
					t.Fatalf("stderr lacks %q:\n%s", tc.stderr, r.Stderr)
				}
				return
			}
			if v := firstRow(t, callJSON(t, r))["answer"]; v != json.Number("42") {
				t.Fatalf("answer = %v", v)
			}
		})
	}

	// A tool error and an unknown tool come back the same way as in-process.
	r := runCLI(t, nil, "call", "--url", open.URL, "query", "sql=SELECT nope")
	if r.Code != 1 || !strings.Contains(r.Stderr, "nope") {
		t.Fatalf("tool error over HTTP: %+v", r)
	}
	r = runCLI(t, nil, "call", "--url", open.URL, "list_table")
	if r.Code != 2 || !strings.Contains(r.Stderr, `did you mean "list_tables"`) {
		t.Fatalf("unknown tool over HTTP: %+v", r)
	}
}

// TestCallAppliesServesPermissions runs the same probes for a table the configured role may not
// read through an in-process `cairn call` and through `cairn serve` over stdio, both with the
// permissions file, the role and --read-only in the environment: every verdict must be the same,
// and the secret must never be printed.
func TestCallAppliesServesPermissions(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	const secret = "launch-code-4242"
	if _, err := db.Pool.Exec(context.Background(), `
		CREATE TABLE secrets (id int PRIMARY KEY, secret text);
		INSERT INTO secrets VALUES (1, '`+secret+`');
		CREATE TABLE notes (id int PRIMARY KEY, body text);
		INSERT INTO notes VALUES (1, 'hello');`); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "permissions.yaml")
	os.WriteFile(file, []byte(`
default_role: reader
roles:
  reader:
    toolsets: [generic]
    operations: [read]
    tables: ["public.*", "pg_catalog.*"]
    tables_deny: ["public.secrets"]
  writer: {toolsets: ["*"], operations: [read, write], tables: ["*"]}
`), 0o600)
	env := append(callEnv(db), "CAIRN_PERMISSIONS_FILE="+file, "CAIRN_READ_ONLY=true")

	cmd := exec.Command(cairnBin, "serve")
	cmd.Env = append(cleanEnv(), env...)
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	served := func(tool string, args map[string]any) (bool, string) {
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
		if err != nil {
			t.Fatalf("serve %s: %v", tool, err)
		}
		var text string
		for _, c := range res.Content {
			if tc, ok := c.(*sdk.TextContent); ok {
				text += tc.Text
			}
		}
		return !res.IsError, text
	}
	probes := []string{
		"SELECT * FROM secrets",
		"TABLE secrets",
		`SELECT * FROM U&"\0073ecrets"`,
		"SELECT * FROM public.secrets",
		"SELECT (SELECT secret FROM secrets LIMIT 1)",
		"SELECT * FROM notes WHERE id IN (SELECT id FROM secrets)",
		"SELECT query_to_xml('SELECT * FROM secrets', true, true, '')",
		"SELECT xmlagg(xmlelement(name s, secret)) FROM secrets",
		"SELECT n.body, s.secret FROM notes n, LATERAL (SELECT secret FROM secrets) s",
		"WITH s AS (SELECT * FROM secrets) SELECT * FROM s",
		"SELECT body FROM notes UNION SELECT secret FROM secrets",
		"SELECT table_to_xml('secrets', true, true, '')",
		"EXPLAIN SELECT * FROM secrets",
		"SELECT body FROM notes",
	}
	for _, p := range probes {
		r := runCLI(t, env, "call", "query", "sql="+p)
		called := r.Code == 0
		servedOK, text := served("query", map[string]any{"sql": p})
		if called != servedOK {
			t.Errorf("%s: call exit %d (%s), serve ok=%v (%s): the verdicts differ", p, r.Code, strings.TrimSpace(r.Stderr), servedOK, text)
		}
		if strings.Contains(r.Stdout+r.Stderr, secret) || strings.Contains(text, secret) {
			t.Errorf("%s: the secret was printed", p)
		}
		if p != "SELECT body FROM notes" && called {
			t.Errorf("%s: cairn call read it", p)
		}
	}
	// --read-only and the role apply too: writes are refused, and --role picks another role.
	if r := runCLI(t, env, "call", "execute", "sql=DELETE FROM notes"); r.Code != 1 || !strings.Contains(r.Stderr, `role "reader" may not write`) {
		t.Errorf("execute as the reader: exit %d %s", r.Code, r.Stderr)
	}
	if r := runCLI(t, env, "call", "--role", "writer", "execute", "sql=DELETE FROM notes"); r.Code != 1 || !strings.Contains(r.Stderr, "read-only") {
		t.Errorf("execute as the writer under CAIRN_READ_ONLY: exit %d %s", r.Code, r.Stderr)
	}
	if r := runCLI(t, append(callEnv(db), "CAIRN_PERMISSIONS_FILE="+file), "call", "--role", "writer", "query", "sql=SELECT secret FROM secrets"); r.Code != 0 {
		t.Errorf("--role writer: exit %d %s", r.Code, r.Stderr)
	}
	if r := runCLI(t, append(callEnv(db), "CAIRN_PERMISSIONS_FILE="+file), "call", "--role", "nobody", "query", "sql=SELECT 1"); r.Code != 2 || !strings.Contains(r.Stderr, `--role "nobody" is not a role`) {
		t.Errorf("--role nobody: exit %d %s", r.Code, r.Stderr)
	}
}
