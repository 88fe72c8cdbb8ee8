package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// cairnBin is the cairn binary the stdio tests spawn, built once in TestMain.
var cairnBin string

func TestMain(m *testing.M) { testbin.Main(m, &cairnBin) }

// stdioClient spawns `cairn serve` on the test database and connects the go-sdk client to it
// over stdio.
func stdioClient(t *testing.T, db *testdb.DB, args ...string) *sdk.ClientSession {
	t.Helper()
	return stdioClientURL(t, db.URL, args...)
}

// stdioClientURL is stdioClient for any database.
func stdioClientURL(t *testing.T, url string, args ...string) *sdk.ClientSession {
	t.Helper()
	cs, _ := stdioClientCmd(t, url, args...)
	return cs
}

// stdioClientCmd is stdioClientURL that also hands back the server process, to kill it.
func stdioClientCmd(t *testing.T, url string, args ...string) (*sdk.ClientSession, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(cairnBin, append([]string{"serve", "--database-url", url}, args...)...)
	cmd.Env = cleanEnv()
	stderr := &testbin.Logs{}
	cmd.Stderr = stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil)
	// The session lives as long as the Connect context: do not cancel it.
	cs, err := client.Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		t.Fatalf("connect to cairn over stdio: %v\nstderr:\n%s", err, stderr)
	}
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("cairn stderr:\n%s", stderr)
		}
	})
	return cs, cmd
}

// httpProcess starts `cairn serve --transport http` on a free loopback port with args and the
// environment extra on top of cleanEnv, waits until /readyz answers, and returns its base URL,
// the process (killed when the test ends) and its log.
func httpProcess(t *testing.T, extra []string, args ...string) (string, *exec.Cmd, *testbin.Logs) {
	t.Helper()
	return testbin.ServeHTTP(t, cairnBin, extra, args...)
}

// cleanEnv is testbin.CleanEnv: only the flags given decide where cairn connects.
func cleanEnv() []string { return testbin.CleanEnv() }

// newServer builds an in-process cairn MCP server on the test database.
func newServer(t *testing.T, db *testdb.DB, cfg *config.Config) *mcp.Server {
	t.Helper()
	if cfg == nil {
		cfg = &config.Config{}
	}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, err := sqlexec.New(context.Background(), db.Pool, sqlexec.Options{MaxRows: cfg.MaxRows, ReadOnly: cfg.ReadOnly, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return mcp.New(mcp.Options{Config: cfg, Pool: db.Pool, Runner: run, Logger: log, Version: "test"})
}

// httpServer serves an in-process cairn over HTTP.
func httpServer(t *testing.T, db *testdb.DB, cfg *config.Config) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(newServer(t, db, cfg).Handler())
	t.Cleanup(ts.Close)
	return ts
}

// connectHTTP connects the go-sdk client over SSE ("sse") or Streamable HTTP ("http").
func connectHTTP(t *testing.T, baseURL, transport string) *sdk.ClientSession {
	t.Helper()
	var tr sdk.Transport
	switch transport {
	case "sse":
		tr = &sdk.SSEClientTransport{Endpoint: baseURL + "/sse"}
	case "http":
		tr = &sdk.StreamableClientTransport{Endpoint: baseURL + "/mcp"}
	default:
		t.Fatalf("unknown transport %q", transport)
	}
	client := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil)
	cs, err := client.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect over %s: %v", transport, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

// result is a decoded tool result.
type result struct {
	IsError bool
	Text    string
	Data    map[string]any // structured content
}

func call(t *testing.T, cs *sdk.ClientSession, tool string, args any) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: protocol error: %v", tool, err)
	}
	var r result
	r.IsError = res.IsError
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			r.Text += tc.Text
		}
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&r.Data); err != nil {
			t.Fatalf("%s: structured content is not an object: %s", tool, b)
		}
	}
	return r
}

// ok calls a tool that must succeed.
func ok(t *testing.T, cs *sdk.ClientSession, tool string, args any) map[string]any {
	t.Helper()
	r := call(t, cs, tool, args)
	if r.IsError {
		t.Fatalf("%s %v: unexpected tool error: %s", tool, args, r.Text)
	}
	if r.Data == nil {
		t.Fatalf("%s: no structured content; text: %s", tool, r.Text)
	}
	return r.Data
}

// fails calls a tool that must fail with a tool error containing every one of wants.
func fails(t *testing.T, cs *sdk.ClientSession, tool string, args any, wants ...string) string {
	t.Helper()
	r := call(t, cs, tool, args)
	if !r.IsError {
		t.Fatalf("%s %v: want a tool error, got success: %s", tool, args, r.Text)
	}
	for _, w := range wants {
		if !strings.Contains(strings.ToLower(r.Text), strings.ToLower(w)) {
			t.Errorf("%s %v: error %q does not mention %q", tool, args, r.Text, w)
		}
	}
	return r.Text
}

// rows returns the rows of a query-shaped result.
func rows(t *testing.T, data map[string]any) []map[string]any {
	t.Helper()
	raw, okk := data["rows"].([]any)
	if !okk {
		t.Fatalf("result has no rows array: %v", data)
	}
	out := make([]map[string]any, len(raw))
	for i, r := range raw {
		out[i] = r.(map[string]any)
	}
	return out
}

// scalar runs a query returning one value and gives it as a string.
func scalar(t *testing.T, cs *sdk.ClientSession, sql string, params ...any) string {
	t.Helper()
	args := map[string]any{"sql": sql}
	if len(params) > 0 {
		args["params"] = params
	}
	rs := rows(t, ok(t, cs, "query", args))
	if len(rs) != 1 || len(rs[0]) != 1 {
		t.Fatalf("%s: want one value, got %v", sql, rs)
	}
	for _, v := range rs[0] {
		return fmt.Sprint(v)
	}
	return ""
}

// stopGracefully sends SIGTERM to a cairn process and checks that it exits cleanly and soon.
func stopGracefully(t *testing.T, cmd *exec.Cmd, logs fmt.Stringer) {
	t.Helper()
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v\n%s", err, logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("%s did not stop after SIGTERM\n%s", cmd.Args[1], logs)
	}
}
