package mcp_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/cairn-mcp/cairn/internal/auth/authtest"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// The attacks of the hardening review, each through the built binary as a low-privilege caller
// would make them; each failed before the fix.

// hardFixtures add to permFixtures what the write and cascade attacks need: a table a writer may
// write, one whose foreign key cascades from it, and one whose foreign key only restricts.
const hardFixtures = `
CREATE TABLE public.allowed_w (id serial PRIMARY KEY, note text);
INSERT INTO public.allowed_w (note) VALUES ('a'), ('b');
CREATE TABLE public.protected_fk (id serial PRIMARY KEY, w int REFERENCES public.allowed_w ON DELETE CASCADE ON UPDATE CASCADE);
INSERT INTO public.protected_fk (w) VALUES (1), (2);
CREATE TABLE public.loose_w (id int PRIMARY KEY);
INSERT INTO public.loose_w VALUES (1), (2);
CREATE TABLE public.loose_ref (w int REFERENCES public.loose_w ON DELETE NO ACTION);
`

const hardYAML = `
roles:
  reader:
    toolsets: [generic]
    operations: [read]
    tables: ["public.*", "pg_catalog.*"]
    tables_deny: ["public.secrets"]
  writer:
    toolsets: ["*"]
    operations: [read, write]
    tables: ["public.*", "pg_catalog.*"]
    write_tables: ["public.allowed_w", "public.allowed_w_id_seq", "public.loose_w"]
  operator:
    toolsets: [generic]
    operations: [read, write]
    tables: ["pg_catalog.*", "pg_catalog.pg_stat_activity"]
    functions: ["pg_catalog.pg_cancel_backend"]
  admin: {toolsets: ["*"], operations: [read, write, ddl], tables: ["*"], functions: ["*"]}
`

func hardDB(t *testing.T) (*testdb.DB, string) {
	t.Helper()
	db, file := permDB(t, hardYAML)
	if _, err := db.Pool.Exec(context.Background(), hardFixtures); err != nil {
		t.Fatal(err)
	}
	return db, file
}

// A statement nested too deeply for the parser (50,000 terms, about 100 KB) killed the whole
// process inside the statement check; every entry point now answers with a tool error and the
// server keeps serving.
func TestDeepSQLDoesNotCrashTheServer(t *testing.T) {
	t.Parallel()
	db, file := hardDB(t)
	chain := "1" + strings.Repeat("+1", 50_000)
	reader := stdioClient(t, db, "--read-only", "--permissions", file, "--role", "reader")
	fails(t, reader, "query", sql("SELECT "+chain), "nests too deeply", "at most 1000")
	fails(t, reader, "vector_search", map[string]any{"table": "docs", "embedding_column": "embedding",
		"query_embedding": []any{1, 0, 0}, "where_clause": "id = " + chain}, "nests too deeply")
	if got := scalar(t, reader, "SELECT 40 + 2"); got != "42" {
		t.Errorf("after the deep statements: %s", got)
	}
	writer := stdioClient(t, db, "--permissions", file, "--role", "writer")
	fails(t, writer, "execute", sql("UPDATE allowed_w SET id = "+chain), "nests too deeply")
	fails(t, writer, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO allowed_w (note) VALUES ('x')"},
		map[string]any{"sql": "SELECT " + chain},
	}}, "statements[1]", "nests too deeply", "nothing was run")
	if got := scalar(t, writer, "SELECT count(*) FROM allowed_w"); got != "2" {
		t.Errorf("allowed_w has %s rows after the refused transaction, want 2", got)
	}
}

// write_tables bounds what a writer changes, including what foreign keys change for it.
func TestWriteTablesCoverCascades(t *testing.T) {
	t.Parallel()
	db, file := hardDB(t)
	cs := stdioClient(t, db, "--permissions", file, "--role", "writer")
	fails(t, cs, "execute", sql("TRUNCATE allowed_w CASCADE"),
		`role "writer" may not write table public.protected_fk (reached through TRUNCATE … CASCADE of public.allowed_w)`, "write_tables")
	fails(t, cs, "execute", sql("DELETE FROM allowed_w WHERE id = 1"),
		"may not write table public.protected_fk", "ON DELETE / ON UPDATE actions of foreign keys referencing public.allowed_w")
	fails(t, cs, "execute", sql("UPDATE allowed_w SET id = 10 WHERE id = 1"), "public.protected_fk")
	fails(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO allowed_w (note) VALUES ('c')"},
		map[string]any{"sql": "WITH d AS (DELETE FROM allowed_w RETURNING id) SELECT count(*) FROM d"},
	}}, "statements[1]", "public.protected_fk", "nothing was run")
	if got := scalar(t, cs, "SELECT count(*) FROM protected_fk"); got != "2" {
		t.Errorf("protected_fk has %s rows, want its 2", got)
	}
	// What cascades nowhere, and plain inserts, are the writer's to do.
	ok(t, cs, "execute", sql("INSERT INTO allowed_w (note) VALUES ('c')"))
	ok(t, cs, "execute", sql("UPDATE allowed_w SET note = 'z' WHERE note = 'c'"+" AND false"))
	ok(t, cs, "execute", sql("DELETE FROM loose_w WHERE id = 2"))
	if got := scalar(t, cs, "SELECT count(*) FROM allowed_w"); got != "3" {
		t.Errorf("allowed_w has %s rows, want 3", got)
	}
}

// Functions that reach other sessions or administer the server need an explicit permission,
// and so do the views that show other sessions' statements, whatever wildcard a role has.
func TestAdministrativeFunctionsNeedPermission(t *testing.T) {
	t.Parallel()
	db, file := hardDB(t)
	writer := stdioClient(t, db, "--permissions", file, "--role", "writer")
	// A backend the attacks aim at, other than the writer's own.
	victim := testdb.Admin(t)
	var pid int
	if err := victim.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	p := strconv.Itoa(pid)
	for _, c := range []struct{ sql, want string }{
		{"SELECT pg_terminate_backend(" + p + ")", "function pg_catalog.pg_terminate_backend: it signals another server process"},
		{"SELECT pg_cancel_backend(" + p + ")", "function pg_catalog.pg_cancel_backend"},
		{"SELECT pg_reload_conf()", "function pg_catalog.pg_reload_conf: it controls the database server"},
		{"SELECT setval('allowed_w_id_seq', 1000)", "function pg_catalog.setval: it sets a sequence's value"},
		{"SELECT nextval('protected_fk_id_seq')", "may not write table public.protected_fk_id_seq (reached through nextval())"},
		{"SELECT lo_create(0)", "function pg_catalog.lo_create"},
		{"SELECT lo_put(1, 0, 'x')", "function pg_catalog.lo_put"},
		{"SELECT pg_notify('cairn_events', 'workflow:x')", `"cairn_events", a channel cairn or River listens on`},
		{"NOTIFY cairn_events, 'workflow:x'", "NOTIFY cairn_events"},
		{"SELECT pg_notify('river_leadership', '{}')", "a channel cairn or River listens on"},
	} {
		fails(t, writer, "execute", sql(c.sql), c.want)
	}
	if err := victim.Ping(context.Background()); err != nil {
		t.Errorf("the other session was hurt: %v", err)
	}
	ok(t, writer, "execute", sql("SELECT nextval('allowed_w_id_seq')"))
	ok(t, writer, "execute", sql("SELECT pg_notify('jobs', 'x')"))

	reader := stdioClient(t, db, "--read-only", "--permissions", file, "--role", "reader")
	fails(t, reader, "query", sql("SELECT query FROM pg_stat_activity"),
		`role "reader" may not read table pg_catalog.pg_stat_activity: it shows other sessions' statements`, "not a wildcard")
	fails(t, reader, "query", sql("SELECT * FROM pg_stats"), "pg_catalog.pg_stats")
	fails(t, reader, "query", sql("SELECT pg_log_backend_memory_contexts(pg_backend_pid())"), "controls the database server")
	ok(t, reader, "query", sql("SELECT count(*) FROM pg_class"))

	operator := stdioClient(t, db, "--permissions", file, "--role", "operator")
	ok(t, operator, "query", sql("SELECT count(*) FROM pg_stat_activity"))
	fails(t, operator, "execute", sql("SELECT pg_terminate_backend("+p+")"), "pg_terminate_backend")
	// Listed, the function runs — within what the database role may do: cairn's role is no
	// superuser, so PostgreSQL itself refuses to cancel a superuser's session.
	fails(t, operator, "execute", sql("SELECT pg_cancel_backend("+p+")"), "must be a superuser")
	var own int
	if err := db.Pool.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&own); err != nil {
		t.Fatal(err)
	}
	ok(t, operator, "execute", sql("SELECT pg_cancel_backend("+strconv.Itoa(own)+")"))
}

// A result is cut at --max-result-bytes (4 MiB by default) and says so, and reading it keeps the
// server's memory bounded: 1,000 rows of 1 MB took the process to 882 MB before.
func TestResultByteCap(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs, cmd := stdioClientCmd(t, db.URL, "--read-only")
	const huge = "SELECT repeat('x', 1000000) AS x FROM generate_series(1, 1000)"
	d := ok(t, cs, "query", sql(huge))
	n, _ := strconv.Atoi(fmt.Sprint(d["row_count"]))
	if d["truncated"] != true || fmt.Sprint(d["max_result_bytes"]) != strconv.Itoa(4<<20) || n < 3 || n > 4 {
		t.Errorf("truncated %v, max_result_bytes %v, row_count %v; want the first 4 rows and the cap named", d["truncated"], d["max_result_bytes"], d["row_count"])
	}
	if notice := fmt.Sprint(d["notice"]); !strings.Contains(notice, "4 MiB (--max-result-bytes / CAIRN_MAX_RESULT_BYTES)") {
		t.Errorf("notice %q", notice)
	}
	for range 3 {
		ok(t, cs, "query", sql(huge))
	}
	if peak := peakRSS(t, cmd.Process.Pid); peak > 400<<20 {
		t.Errorf("the server peaked at %d MB reading capped results", peak>>20)
	}
	// The connection that was cut off is not handed to the next caller.
	if got := scalar(t, cs, "SELECT 1"); got != "1" {
		t.Errorf("after a capped result: %s", got)
	}

	small, _ := stdioClientCmd(t, db.URL, "--max-result-bytes", "2048")
	d = ok(t, small, "execute", sql("SELECT g, repeat('y', 100) FROM generate_series(1, 100) g"))
	if d["truncated"] != true || fmt.Sprint(d["max_result_bytes"]) != "2048" {
		t.Errorf("execute over the cap: %v", d)
	}
}

// peakRSS is a process's peak resident set size (VmHWM).
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no VmHWM in /proc/%d/status", pid)
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb << 10
}

// An SSE session belongs to the identity that opened it — how it authenticated, its issuer and
// its user — and to its role: a JWT whose subject is the name of an admin's static token could
// post to the admin's session and run with the admin's role.
func TestSSESessionIdentity(t *testing.T) {
	t.Parallel()
	db, file := hardDB(t)
	key := authtest.NewKey(t, "ES256", "k")
	iss := authtest.NewIssuer(t, key)
	base, _, logs := httpProcess(t, []string{"CAIRN_AUTH_TOKENS=adm:admin:tok-adm"},
		"--database-url", db.URL, "--permissions", file, "--auth-issuer", iss.URL, "--auth-audience", testAudience)
	jwtAs := func(sub, role string) string {
		c := iss.Claims(sub, testAudience)
		c["role"] = role
		return authtest.Sign(t, key, c)
	}
	endpoint, stop := openSSE(t, base, "tok-adm")
	defer stop()
	post := func(token string) (int, string) {
		body := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
		req, _ := http.NewRequest("POST", base+endpoint, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		name, token string
		code        int
		want        string
	}{
		{"a JWT whose subject is the token's name", jwtAs("adm", "reader"), 403, "session identity mismatch"},
		{"the same, claiming the admin role", jwtAs("adm", "admin"), 403, "session identity mismatch"},
		{"another static user", "", 401, ""},
		{"the opener", "tok-adm", 202, ""},
	} {
		code, body := post(c.token)
		if code != c.code || !strings.Contains(body, c.want) {
			t.Errorf("%s: HTTP %d %q, want %d %q", c.name, code, body, c.code, c.want)
		}
	}

	// A JWT session posted to with the same subject but another role is refused too: tools run
	// with the opener's role, which must be the poster's.
	endpoint2, stop2 := openSSE(t, base, jwtAs("carol", "reader"))
	defer stop2()
	endpoint = endpoint2
	if code, body := post(jwtAs("carol", "admin")); code != 403 || !strings.Contains(body, `opened with role "reader" and this token has role "admin"`) {
		t.Errorf("role change: HTTP %d %q", code, body)
	}
	if code, _ := post(jwtAs("carol", "reader")); code != 202 {
		t.Errorf("the opener again: HTTP %d", code)
	}

	// Audit lines name the identity: how it authenticated and the issuer.
	cs, _, err := connectAs(base, "sse", jwtAs("adm", "writer"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ok(t, cs, "execute", sql("INSERT INTO allowed_w (note) VALUES ('audited')"))
	waitFor(t, 5*time.Second, "the audit line", func() (bool, string) {
		for _, l := range strings.Split(logs.String(), "\n") {
			if strings.Contains(l, "msg=audit") && strings.Contains(l, "tool=execute") {
				return strings.Contains(l, "user=adm auth=jwt issuer="+iss.URL+" role=writer"), l
			}
		}
		return false, "no audit line"
	})
}

// openSSE opens an SSE stream with token and returns the endpoint its session posts to.
func openSSE(t *testing.T, base, token string) (string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/sse", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != 200 {
		cancel()
		t.Fatalf("open /sse: %v %v", err, resp)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if data, found := strings.CutPrefix(sc.Text(), "data: "); found {
			return strings.TrimSpace(data), func() { cancel(); resp.Body.Close() }
		}
	}
	cancel()
	t.Fatal("no endpoint event on /sse")
	return "", nil
}

// An issuer whose keys cannot be fetched gets JWT callers a 503 saying so, without library
// error chains; static tokens keep working.
func TestIssuerKeysUnavailable(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "upstream down", http.StatusBadGateway)
	}))
	defer down.Close()
	key := authtest.NewKey(t, "ES256", "k")
	base, _, _ := httpProcess(t, []string{"CAIRN_AUTH_TOKENS=ci:admin:tok-ci"}, "--database-url", db.URL,
		"--auth-issuer", down.URL, "--auth-audience", testAudience)
	token := authtest.Sign(t, key, jwt.MapClaims{"iss": down.URL, "sub": "a", "aud": testAudience, "role": "admin", "exp": time.Now().Add(time.Minute).Unix()})
	req, _ := http.NewRequest("POST", base+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"ping"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), "the issuer's signing keys could not be fetched (it answered HTTP 502)") || strings.Contains(string(body), "keyfunc") {
		t.Errorf("JWT with the issuer down: HTTP %d (Retry-After %q) %q", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	cs, _, err := connectAs(base, "http", "tok-ci")
	if err != nil {
		t.Fatalf("static token with the issuer down: %v", err)
	}
	defer cs.Close()
	if got := scalar(t, cs, "SELECT 'still'"); got != "still" {
		t.Errorf("static token: %s", got)
	}
}
