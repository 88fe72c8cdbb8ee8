package mcp_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

func TestHTTPTransportsEndToEnd(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	ts := httpServer(t, db, nil)
	for _, transport := range []string{"sse", "http"} {
		t.Run(transport, func(t *testing.T) {
			cs := connectHTTP(t, ts.URL, transport)
			name := "wf-" + transport
			ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1)", "params": []any{name}})
			if got := scalar(t, cs, "SELECT status FROM workflows WHERE name = $1", name); got != "pending" {
				t.Errorf("status = %q", got)
			}
			fails(t, cs, "query", map[string]any{"sql": "DELETE FROM workflows"}, "execute")
			tools, err := cs.ListTools(context.Background(), nil)
			if err != nil || len(tools.Tools) < 13 {
				t.Fatalf("tools/list over %s: %d tools, %v", transport, len(tools.Tools), err)
			}

			// Concurrent clients, each with its own session.
			var wg sync.WaitGroup
			errs := make(chan error, 8*10)
			for c := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					client := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
					var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp"}
					if transport == "sse" {
						tr = &sdk.SSEClientTransport{Endpoint: ts.URL + "/sse"}
					}
					ctx := context.Background()
					s, err := client.Connect(ctx, tr, nil)
					if err != nil {
						errs <- err
						return
					}
					defer s.Close()
					for i := range 10 {
						res, err := s.CallTool(ctx, &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "SELECT $1::int + $2::int AS v", "params": []any{c, i}}})
						if err != nil || res.IsError {
							errs <- fmt.Errorf("client %d call %d: %v %v", c, i, err, res)
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
		})
	}
}

func TestHTTPAuthOriginAndHealth(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ts := httpServer(t, db, &config.Config{Transport: "http", AuthToken: "s3cret"})

	do := func(method, path string, hdr map[string]string) int {
		var body io.Reader
		if method == "POST" {
			body = strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{}}`)
		}
		req, _ := http.NewRequest(method, ts.URL+path, body)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(path string, hdr map[string]string) int { return do("GET", path, hdr) }
	post := func(path string, hdr map[string]string) int { return do("POST", path, hdr) }
	if c := get("/healthz", nil); c != 200 {
		t.Errorf("/healthz = %d", c)
	}
	if c := get("/readyz", nil); c != 200 {
		t.Errorf("/readyz = %d", c)
	}
	if c := post("/mcp", nil); c != 401 {
		t.Errorf("no token: %d, want 401", c)
	}
	if c := post("/mcp", map[string]string{"Authorization": "Bearer wrong"}); c != 401 {
		t.Errorf("wrong token: %d, want 401", c)
	}
	if c := get("/sse", nil); c != 401 {
		t.Errorf("sse without token: %d, want 401", c)
	}
	if c := post("/mcp", map[string]string{"Authorization": "Bearer s3cret", "Origin": "https://evil.example"}); c != 403 {
		t.Errorf("cross-origin browser request: %d, want 403", c)
	}
	if c := post("/mcp", map[string]string{"Authorization": "Bearer s3cret"}); c != 200 {
		t.Errorf("right token: %d, want 200", c)
	}

	// The go-sdk client with the token gets in.
	client := sdk.NewClient(&sdk.Implementation{Name: "c", Version: "1"}, nil)
	hc := &http.Client{Transport: bearer{"s3cret"}}
	cs, err := client.Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if got := scalar(t, cs, "SELECT 'in'"); got != "in" {
		t.Errorf("got %q", got)
	}
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

// TestServeHTTPProcess runs the real binary on the HTTP transport: it answers over both HTTP
// transports, and SIGTERM shuts it down cleanly.
func TestServeHTTPProcess(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	base, cmd, logs := httpProcess(t, nil, "--database-url", db.URL)
	for _, tr := range []string{"http", "sse"} {
		cs := connectHTTP(t, base, tr)
		if got := scalar(t, cs, "SELECT 40 + 2"); got != "42" {
			t.Errorf("%s: got %s", tr, got)
		}
	}
	stopGracefully(t, cmd, logs)
}

func TestServeRefusesNonLoopbackWithoutToken(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(cairnBin, "serve", "--transport", "http", "--addr", "0.0.0.0:0", "--database-url", "host=/nonexistent")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 {
		t.Fatalf("want exit code 2, got %v: %s", err, out)
	}
	if !strings.Contains(string(out), "--auth-token") {
		t.Errorf("message should say how to fix it: %s", out)
	}
}

func TestServeSaysWhereItCouldNotConnect(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(cairnBin, "serve", "--database-url", "postgres://nobody:hunter2@127.0.0.1:1/nodb?connect_timeout=2")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("serve should fail without a database")
	}
	s := string(out)
	if !strings.Contains(s, "cannot connect") || !strings.Contains(s, "127.0.0.1") || !strings.Contains(s, "pg_isready") {
		t.Errorf("error should say where and what to check: %s", s)
	}
	if strings.Contains(s, "hunter2") {
		t.Errorf("password leaked into the error: %s", s)
	}
}

// TestServeWithEmbeddedCluster is `make run` on a machine with no database configured: cairn
// creates its own cluster, migrates and serves; `cairn db` manages it.
func TestServeWithEmbeddedCluster(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "cairn-embedded-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // as root the cluster runs as the postgres user, which must get in
	dataDir := filepath.Join(dir, "pg")
	env := append(cleanEnv(), "CAIRN_DATA_DIR="+dataDir)
	t.Cleanup(func() {
		stop := exec.Command(cairnBin, "db", "stop")
		stop.Env = env
		if out, err := stop.CombinedOutput(); err != nil {
			t.Errorf("cairn db stop: %v\n%s", err, out)
		}
		os.RemoveAll(dir)
	})

	cmd := exec.Command(cairnBin, "serve")
	cmd.Env = env
	logs := &testbin.Logs{}
	cmd.Stderr = logs
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "t", Version: "1"}, nil).Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("serve with the embedded cluster: %v\n%s", err, logs)
	}
	if got := scalar(t, cs, "SELECT current_database()"); got != "cairn" {
		t.Errorf("database = %q", got)
	}
	info := ok(t, cs, "server_info", map[string]any{})
	if info["pgvector_version"] == "" {
		t.Error("the embedded cluster should have pgvector")
	}
	cs.Close()

	status := exec.Command(cairnBin, "db", "status")
	status.Env = env
	out, err := status.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "running:      true") {
		t.Errorf("cairn db status: %v\n%s", err, out)
	}
}

// A person starting cairn is told how to use it: the HTTP server prints where it serves and how
// to connect, and GET / answers with the same (without where the data lives when tokens are
// required); over stdio from a terminal it says that it waits for a client and how to try it.
func TestServeTellsAPersonHowToConnect(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	base, _, logs := httpProcess(t, nil, "--database-url", db.URL, "--embedder", "builtin")
	for _, want := range []string{"is serving MCP at " + base + "/mcp", "claude mcp add --transport http cairn " + base + "/mcp",
		"npx @modelcontextprotocol/inspector", "data              database ", "embedder          builtin/hashing-v1/768 (configured)"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the start-up banner lacks %q:\n%s", want, logs)
		}
	}
	if code, body := get(t, base+"/", ""); code != 200 || !strings.Contains(body, "claude mcp add --transport http cairn "+base+"/mcp") || !strings.Contains(body, "data ") {
		t.Errorf("GET /: %d %s", code, body)
	}
	secured, _, _ := httpProcess(t, []string{"CAIRN_AUTH_TOKEN=tok"}, "--database-url", db.URL, "--embedder", "builtin")
	if code, body := get(t, secured+"/", ""); code != 200 || strings.Contains(body, "data ") || strings.Contains(body, db.Name) {
		t.Errorf("GET / on a server that requires tokens shows where the data lives: %d %s", code, body)
	}

	// Over stdio from a terminal (script gives cairn one).
	cmd := exec.Command("script", "-qefc", cairnBin+" serve --embedder builtin --database-url '"+db.URL+"'", "/dev/null")
	cmd.Env = cleanEnv()
	out := &testbin.Logs{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	waitFor(t, 20*time.Second, "the terminal hint", func() (bool, string) {
		return strings.Contains(out.String(), "waits for an MCP client") && strings.Contains(out.String(), "cairn call query sql='SELECT 1'"), out.String()
	})
}
