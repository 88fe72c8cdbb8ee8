package mcp_test

import (
	"context"
	"fmt"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// embedProcess starts `cairn worker` embedding through the Ollama stand-in, with args on top;
// it is killed when the test ends.
func embedProcess(t *testing.T, db *testdb.DB, ollama *embedtest.Server, args ...string) (*exec.Cmd, *testbin.Logs) {
	t.Helper()
	return testbin.Start(t, cairnBin, nil, append([]string{"worker", "--database-url", db.URL, "--embedder", "ollama", "--ollama-host", ollama.URL}, args...)...)
}

// pendingEpisodes inserts n episodes with raw SQL, as a client of the predecessor would: the
// sweep finds them.
func pendingEpisodes(t *testing.T, db *testdb.DB, n int) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO episodes (name, content, episode_type)
		SELECT 'episode ' || i, 'the ' || i || 'th time the payments service timed out', 'error' FROM generate_series(1, $1) i`, n); err != nil {
		t.Fatal(err)
	}
}

func embedCounts(t *testing.T, db *testdb.DB) (embedded, pending, failed int) {
	t.Helper()
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FILTER (WHERE embed_state = 'embedded'),
		count(*) FILTER (WHERE embed_state = 'pending'), count(*) FILTER (WHERE embed_state = 'failed') FROM episodes`).
		Scan(&embedded, &pending, &failed); err != nil {
		t.Fatal(err)
	}
	return
}

// Ollama answers 500, then hangs, then recovers, under a serve and a worker: while it fails at
// most one call per process is in flight (the probe), and once it answers again everything is
// embedded, nothing failed and nothing lost. (docs/BENCHMARKS.md has the drain time at full
// size.)
func TestEmbedOutageRecovery(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ollama := embedtest.New()
	defer ollama.Close()
	const n = 1000
	pendingEpisodes(t, db, n)
	ollama.FailNext(1 << 30)
	flags := []string{"--embed-timeout", "2s", "--embed-max-backoff", "1s", "--embed-sweep", "1s"}
	httpProcess(t, nil, append([]string{"--database-url", db.URL, "--embedder", "ollama", "--ollama-host", ollama.URL}, flags...)...)
	embedProcess(t, db, ollama, flags...)

	// Both processes find Ollama failing; from then on, one probe at a time each.
	time.Sleep(time.Second)
	ollama.ResetMaxInFlight()
	ollama.Reset()
	time.Sleep(3 * time.Second)
	failing := ollama.Calls()
	ollama.FailNext(0)
	ollama.SetDelay(time.Hour) // now it hangs
	time.Sleep(3 * time.Second)
	if got := ollama.MaxInFlight(); got > 2 {
		t.Errorf("%d embed calls in flight at once while Ollama failed or hung; want at most one probe per process", got)
	}
	if failing > 12 {
		t.Errorf("%d calls reached the failing Ollama in 3 s from two processes; want a few probes", failing)
	}
	if embedded, _, _ := embedCounts(t, db); embedded != 0 {
		t.Fatalf("%d rows embedded while Ollama was down", embedded)
	}
	ollama.SetDelay(0)
	recovered := time.Now()
	waitFor(t, 60*time.Second, "every episode embedded after the recovery", func() (bool, string) {
		e, p, f := embedCounts(t, db)
		return e == n && p == 0 && f == 0, fmt.Sprintf("embedded %d, pending %d, failed %d", e, p, f)
	})
	t.Logf("drained %d episodes %s after Ollama recovered", n, time.Since(recovered).Round(10*time.Millisecond))
	var discarded int
	db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM river_job WHERE state = 'discarded'`).Scan(&discarded)
	if discarded > 0 {
		t.Errorf("%d embed jobs discarded during the outage", discarded)
	}
}

// recordVectorWrites counts every write of an episode's vector in vector_writes.
func recordVectorWrites(t *testing.T, db *testdb.DB) {
	t.Helper()
	if _, err := db.Pool.Exec(context.Background(), `
		CREATE TABLE vector_writes (id bigint NOT NULL);
		CREATE FUNCTION record_vector_write() RETURNS trigger LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO vector_writes VALUES (NEW.id); RETURN NULL; END $$;
		CREATE TRIGGER episodes_vector_written AFTER UPDATE OF embedding ON episodes FOR EACH ROW
			WHEN (NEW.embedding IS DISTINCT FROM OLD.embedding) EXECUTE FUNCTION record_vector_write();`); err != nil {
		t.Fatal(err)
	}
}

func writesPerRow(t *testing.T, db *testdb.DB) (rows, maxWrites int) {
	t.Helper()
	if err := db.Pool.QueryRow(context.Background(), `SELECT count(*), coalesce(max(c), 0) FROM (SELECT count(*) c FROM vector_writes GROUP BY id) w`).Scan(&rows, &maxWrites); err != nil {
		t.Fatal(err)
	}
	return
}

// A worker that dies mid-batch leaves its rows to another process within seconds (its lease is
// short and was only kept alive by its heartbeat), and each row's vector is written once.
func TestEmbedWorkerKilledMidBatch(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	recordVectorWrites(t, db)
	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetDelay(500 * time.Millisecond) // every batch call takes a while
	const n = 5 * 64                        // batches for both workers
	pendingEpisodes(t, db, n)
	a, _ := embedProcess(t, db, ollama, "--embed-workers", "1")
	waitFor(t, 20*time.Second, "worker A's batch call", func() (bool, string) { return ollama.MaxInFlight() > 0, "none yet" })
	embedProcess(t, db, ollama, "--embed-workers", "1")
	waitFor(t, 20*time.Second, "worker B's batch call", func() (bool, string) { return ollama.MaxInFlight() > 1, "one" })
	a.Process.Kill()
	killed := time.Now()
	a.Wait()
	waitFor(t, 30*time.Second, "every episode embedded", func() (bool, string) {
		e, p, f := embedCounts(t, db)
		return e == n, fmt.Sprintf("embedded %d, pending %d, failed %d", e, p, f)
	})
	took := time.Since(killed)
	t.Logf("the killed worker's batch was embedded by the other %s after the kill", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("the killed worker's batch took %s to be embedded by another process; want under 10 s", took)
	}
	if rows, most := writesPerRow(t, db); rows != n || most != 1 {
		t.Errorf("vectors written for %d rows, at most %d times each; want %d rows once", rows, most, n)
	}
}

// A worker that is only slow — stopped past its lease — finds its batch taken over, and its late
// vectors are refused: no row's vector is written twice.
func TestEmbedLateWorkerCannotOverwrite(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	recordVectorWrites(t, db)
	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetDelay(time.Second)
	const n = 64
	pendingEpisodes(t, db, n)
	a, aLogs := embedProcess(t, db, ollama, "--embed-workers", "1")
	waitFor(t, 20*time.Second, "worker A's batch call", func() (bool, string) { return ollama.MaxInFlight() > 0, "none yet" })
	a.Process.Signal(syscall.SIGSTOP)
	embedProcess(t, db, ollama, "--embed-workers", "1")
	waitFor(t, 20*time.Second, "the batch embedded by worker B", func() (bool, string) {
		e, p, f := embedCounts(t, db)
		return e == n, fmt.Sprintf("embedded %d, pending %d, failed %d", e, p, f)
	})
	ollama.Reset()
	a.Process.Signal(syscall.SIGCONT)
	// A wakes with its answer from Ollama in hand and tries to write it; its job ends once it has.
	waitFor(t, 30*time.Second, "worker A's embed job finished", func() (bool, string) {
		var running int
		err := db.Pool.QueryRow(context.Background(),
			`SELECT count(*) FROM river_job WHERE kind = 'knowledge_embed' AND state = 'running'`).Scan(&running)
		return err == nil && running == 0, fmt.Sprintf("%d running (%v)", running, err)
	})
	if rows, most := writesPerRow(t, db); rows != n || most != 1 {
		t.Errorf("vectors written for %d rows, at most %d times each; want %d rows once\n%s", rows, most, n, aLogs)
	}
}
