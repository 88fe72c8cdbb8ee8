package mcp_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestWorkerProcess runs `cairn worker`: it migrates River's tables, says what it runs, writes
// nothing to stdout, and exits 0 on SIGTERM.
func TestWorkerProcess(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cmd := exec.Command(cairnBin, "worker", "--database-url", db.URL)
	cmd.Env = cleanEnv()
	stdout := &testbin.Logs{}
	cmd.Stdout = stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &testbin.Logs{}
	started := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if strings.Contains(sc.Text(), "working background jobs") {
				close(started)
			}
		}
	}()
	select {
	case <-started:
	case <-time.After(20 * time.Second):
		t.Fatalf("cairn worker did not say it started\n%s", logs)
	}

	var exists bool
	if err := db.Pool.QueryRow(context.Background(), "SELECT to_regclass('river_job') IS NOT NULL").Scan(&exists); err != nil || !exists {
		t.Errorf("river_job after cairn worker started: exists=%t, %v", exists, err)
	}

	stopGracefully(t, cmd, logs)
	if s := stdout.String(); s != "" {
		t.Errorf("cairn worker wrote to stdout: %q", s)
	}
}

func TestWorkerRefusesBadWorkerCount(t *testing.T) {
	t.Parallel()
	for _, n := range []string{"0", "-1", "10001"} {
		cmd := exec.Command(cairnBin, "worker", "--workers", n, "--database-url", "host=/nonexistent")
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 {
			t.Errorf("--workers %s: want exit code 2, got %v: %s", n, err, out)
		} else if !strings.Contains(string(out), "--workers") {
			t.Errorf("--workers %s: message should name the flag: %s", n, out)
		}
	}
}

// A worker with --addr answers /healthz, /readyz and /metrics as serve does: the pools, the
// job queue and the embed backlog, the metrics behind the token when one is set; with
// --pprof-addr it serves Go's profiles behind the same token.
func TestWorkerOpsEndpoints(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	addr, pprofAddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	cmd := exec.Command(cairnBin, "worker", "--database-url", db.URL, "--embedder", "builtin", "--addr", addr, "--pprof-addr", pprofAddr)
	cmd.Env = append(cleanEnv(), "CAIRN_AUTH_TOKEN=tok-metrics")
	logs := &testbin.Logs{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	base := "http://" + addr
	waitFor(t, 30*time.Second, "the worker's /readyz", func() (bool, string) {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), `"status":"ready"`), string(b)
	})
	if code, _ := get(t, base+"/healthz", ""); code != 200 {
		t.Errorf("/healthz: %d", code)
	}
	if code, _ := get(t, base+"/metrics", ""); code != 401 {
		t.Errorf("/metrics without the token: %d, want 401", code)
	}
	fams := scrape(t, base, "tok-metrics")
	for _, name := range []string{"cairn_jobs", "cairn_jobs_up", "cairn_knowledge_embed_backlog", "cairn_db_pool_max_connections",
		"cairn_db_pool_acquire_wait_seconds", "go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("the worker's /metrics lacks %s", name)
		}
	}
	if v := value(t, fams, "cairn_jobs_up"); v != 1 {
		t.Errorf("cairn_jobs_up = %v", v)
	}
	if v := value(t, fams, "cairn_db_pool_max_connections", "pool", "system"); v != 4 {
		t.Errorf("the system pool's size = %v, want 4", v)
	}
	profiles := "http://" + pprofAddr + "/debug/pprof/"
	if code, _ := get(t, profiles, ""); code != 401 {
		t.Errorf("profiles without the token: %d, want 401", code)
	}
	if code, body := get(t, profiles+"goroutine?debug=1", "tok-metrics"); code != 200 || !strings.Contains(body, "goroutine profile:") {
		t.Errorf("the goroutine profile: %d %.200s", code, body)
	}
	stopGracefully(t, cmd, logs)
}

// Profiles are off unless asked for, and never open beyond loopback without a token.
func TestProfilesNeedATokenBeyondLoopback(t *testing.T) {
	t.Parallel()
	cmd := exec.Command(cairnBin, "serve", "--pprof-addr", "0.0.0.0:0", "--database-url", "host=/nonexistent")
	cmd.Env = cleanEnv()
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "--pprof-addr 0.0.0.0:0 listens beyond loopback: set --auth-token") {
		t.Errorf("serve --pprof-addr 0.0.0.0:0 without a token: %v\n%s", err, out)
	}
}
