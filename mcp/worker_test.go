package mcp_test

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestWorkerProcess runs `cairn worker`: it migrates River's tables, says what it runs, writes
// nothing to stdout, and exits 0 on SIGTERM.
func TestWorkerProcess(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cmd := exec.Command(cairnBin, "worker", "--database-url", db.URL)
	cmd.Env = cleanEnv()
	stdout := &lockedBuffer{}
	cmd.Stdout = stdout
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &lockedBuffer{}
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
