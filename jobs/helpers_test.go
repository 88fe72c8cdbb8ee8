package jobs_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
)

// migratedDB is a test database with River's tables: testdb's template has cairn's only.
func migratedDB(t *testing.T) *testdb.DB {
	t.Helper()
	db := testdb.New(t)
	if err := jobs.Migrate(context.Background(), db.Pool, quiet()); err != nil {
		t.Fatalf("jobs.Migrate: %v", err)
	}
	return db
}

// onePool opens a pool of at most one connection to url, closed when the test ends.
func onePool(t *testing.T, url string) *pgxpool.Pool {
	t.Helper()
	pc, err := (&config.Config{DatabaseURL: url, StatementTimeout: config.DefaultStatementTimeout, PoolMax: 1}).PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// quiet discards what is logged to it.
func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// start starts a job client on db and stops it when the test ends.
func start(t *testing.T, db *testdb.DB, reg *jobs.Registry, opts jobs.Options) *jobs.Client {
	t.Helper()
	if opts.Logger == nil {
		// River's warnings are shown when the test fails; a logger writing to the test itself
		// would outlive it in River's goroutines.
		var buf testbin.Logs
		t.Cleanup(func() {
			if t.Failed() && buf.Len() > 0 {
				t.Logf("log:\n%s", buf.String())
			}
		})
		opts.Logger = slog.New(slog.NewTextHandler(&buf, nil))
	}
	c, err := jobs.Start(context.Background(), db.Pool, reg, opts)
	if err != nil {
		t.Fatalf("jobs.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return c
}

// recordArgs is a job whose worker reports its name.
type recordArgs struct {
	Name string `json:"name"`
}

func (recordArgs) Kind() string { return "cairn_test_record" }

// receive waits for a name from ch.
func receive(t *testing.T, ch <-chan string, within time.Duration) string {
	t.Helper()
	select {
	case name := <-ch:
		return name
	case <-time.After(within):
		t.Fatalf("no job ran within %s", within)
		return ""
	}
}
