package mcp_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/internal/pgcluster"
	"github.com/cairn-mcp/cairn/internal/testdb"
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
	// Every tool says the same about an outage before anything was sent: nothing was run, and
	// how to go on; none shows the database's user, socket or port.
	for _, c := range []struct {
		tool string
		args map[string]any
		want string
	}{
		{"query", map[string]any{"sql": "SELECT 2"}, "a read is safe to retry"},
		{"execute", map[string]any{"sql": "CREATE TABLE t (id int)"}, "retry once PostgreSQL answers again"},
		{"workflow_start", map[string]any{"name": "w"}, "retry once"},
		{"checkpoint_save", map[string]any{"workflow_id": "wf-down", "node_id": "n", "state": map[string]any{}, "idempotency_key": "k1"}, "retry once"},
		{"checkpoint_load", map[string]any{"workflow_id": "wf-down"}, "a read is safe to retry"},
		{"agent_register", map[string]any{"template": "t"}, "retry once"},
		{"agent_record_execution", map[string]any{"agent_id": "a", "tokens_in": 1, "tokens_out": 1, "duration_ms": 1, "outcome": "success"}, "retry once"},
		{"agent_metrics", map[string]any{"bucket": "day"}, "a read is safe to retry"},
		{"knowledge_add_episode", map[string]any{"content": "something happened"}, "retry once"},
		{"knowledge_search", map[string]any{"query": "something"}, "a read is safe to retry"},
		{"knowledge_status", map[string]any{}, "a read is safe to retry"},
	} {
		msg := fails(t, cs, c.tool, c.args, "the database is unavailable (", "nothing was run", c.want)
		for _, leak := range []string{cl.DataDir(), filepath.Dir(cl.DataDir()), "user=", "port", "postgres@", "5432"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%s: the error shows %q: %s", c.tool, leak, msg)
			}
		}
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

// A write whose connection dies after it was sent says it may or may not have been applied and
// how to retry safely; the retry with the same idempotency key then does the work once.
func TestOutageAfterTheCallWasSent(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	ctx := context.Background()
	ok(t, cs, "workflow_start", map[string]any{"name": "w", "workflow_id": "wf-cut"})
	// Hold the workflow's row so that the save waits inside its statement, then end its
	// connection as an administrator would.
	admin := testdb.Admin(t)
	lock, err := pgx.Connect(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	tx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1 FROM workflows WHERE id = 'wf-cut' FOR UPDATE"); err != nil {
		t.Fatal(err)
	}
	save := map[string]any{"workflow_id": "wf-cut", "node_id": "n1", "state": map[string]any{"step": 1}, "idempotency_key": "save-1"}
	res := make(chan string, 1)
	go func() { res <- fails(t, cs, "checkpoint_save", save) }()
	waitFor(t, 10*time.Second, "the save waiting on the lock", func() (bool, string) {
		var n int
		admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, db.Name).Scan(&n)
		return n == 1, fmt.Sprint(n, " waiting")
	})
	if _, err := admin.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock'`, db.Name); err != nil {
		t.Fatal(err)
	}
	msg := <-res
	for _, want := range []string{"may or may not have been applied", "retry with the same idempotency_key", "duplicate: true"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}
	tx.Rollback(ctx)
	d := ok(t, cs, "checkpoint_save", save)
	if d["duplicate"] != false {
		t.Errorf("the retry: %v; the first save was cut off, so this one does the work", d)
	}
	if again := ok(t, cs, "checkpoint_save", save); again["duplicate"] != true || again["checkpoint_id"] != d["checkpoint_id"] {
		t.Errorf("a second retry: %v", again)
	}
}
