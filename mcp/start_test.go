package mcp_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// A pending server lists its tools at once and holds calls until Started; /readyz says
// "starting" meanwhile. A failed start fails the calls with its reason.
func TestPendingServerHoldsCallsUntilStarted(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cfg := &config.Config{}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	pending := func() *mcp.Server {
		return mcp.New(mcp.Options{Config: cfg, Pool: db.Pool, Logger: log, Version: "test", Pending: true})
	}

	srv := pending()
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	if code, body := get(t, ts.URL+"/readyz", ""); code != 503 || !strings.Contains(body, `"status":"starting"`) {
		t.Errorf("/readyz while starting: %d %s", code, body)
	}
	cs := inMemoryClient(t, srv)
	if tools, err := cs.ListTools(context.Background(), nil); err != nil || len(tools.Tools) == 0 {
		t.Fatalf("tools/list while starting: %v", err)
	}
	answered := make(chan *sdk.CallToolResult, 1)
	go func() {
		res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "SELECT 7 AS n"}})
		if err != nil {
			t.Error(err)
		}
		answered <- res
	}()
	select {
	case <-answered:
		t.Fatal("a call was answered before the server had started")
	case <-time.After(200 * time.Millisecond):
	}
	run, err := sqlexec.New(context.Background(), db.Pool, sqlexec.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv.Started(mcp.Started{Runner: run}, nil)
	if res := <-answered; res == nil || res.IsError || !strings.Contains(firstText(res), `"n":7`) {
		t.Errorf("the call once started: %+v", res)
	}
	if code, body := get(t, ts.URL+"/readyz", ""); code != 200 {
		t.Errorf("/readyz once started: %d %s", code, body)
	}

	failed := pending()
	failed.Started(mcp.Started{}, errors.New("cannot connect to database \"x\""))
	r := call(t, inMemoryClient(t, failed), "query", map[string]any{"sql": "SELECT 1"})
	if !r.IsError || !strings.Contains(r.Text, `cairn could not start: cannot connect to database "x"`) {
		t.Errorf("a call after a failed start: %+v", r)
	}
}

func firstText(res *sdk.CallToolResult) string {
	if len(res.Content) == 0 {
		return ""
	}
	tc, _ := res.Content[0].(*sdk.TextContent)
	return tc.Text
}

// serve answers initialize before it has reached PostgreSQL, and when it cannot reach it, exits
// with the reason: here a server that accepts connections and never answers.
func TestServeAnswersBeforeTheDatabase(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command(cairnBin, "serve", "--no-migrate", "--database-url", "host=127.0.0.1 port="+strconv.Itoa(port)+" user=cairn dbname=cairn connect_timeout=3")
	cmd.Env = cleanEnv()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr := &testbin.Logs{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill() })
	start := time.Now()
	io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`+"\n")
	line, err := bufio.NewReader(stdout).ReadString('\n')
	var resp struct {
		Result struct {
			ServerInfo struct{ Name string } `json:"serverInfo"`
		} `json:"result"`
	}
	if err != nil || json.Unmarshal([]byte(line), &resp) != nil || resp.Result.ServerInfo.Name != "cairn" {
		t.Fatalf("initialize: %v %q\n%s", err, line, stderr.String())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("initialize took %s: it waited for the database", d)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 1 || !strings.Contains(stderr.String(), "cannot connect to") {
			t.Errorf("exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not exit without its database\n%s", stderr.String())
	}
}
