package mcp_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/pgcluster"
)

// TestPostgresRestart: calls made while the database is down fail with a clear tool error, and
// once it is back the server answers again without a restart of its own.
func TestPostgresRestart(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "cairn-restart-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0o755) // as root the cluster runs as the postgres user, which must get in
	t.Cleanup(func() { os.RemoveAll(dir) })
	cl, err := pgcluster.New(pgcluster.Options{DataDir: filepath.Join(dir, "pg")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Stop(context.Background()) })

	cs := stdioClientURL(t, cl.ConnString(), "--pool-min", "1", "--pool-max", "2")
	if got := scalar(t, cs, "SELECT 1"); got != "1" {
		t.Fatalf("before restart: %s", got)
	}
	if err := cl.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	msg := fails(t, cs, "query", map[string]any{"sql": "SELECT 2"})
	if !strings.Contains(msg, "database") {
		t.Errorf("error while the database is down should say so: %s", msg)
	}
	if err := cl.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := call(t, cs, "query", map[string]any{"sql": "SELECT 3 AS v"})
		if !r.IsError {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn did not recover after PostgreSQL came back: %s", r.Text)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Every pooled connection works again (none is left dead in the pool).
	for range 5 {
		if got := scalar(t, cs, "SELECT 4"); got != "4" {
			t.Fatalf("after restart: %s", got)
		}
	}
}
