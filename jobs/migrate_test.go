package jobs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
)

func TestMigrateIsIdempotentAndSafeConcurrently(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	pending, err := jobs.Pending(ctx, db.Pool)
	if err != nil || len(pending) == 0 {
		t.Fatalf("Pending on a database without River's tables = %v, %v; want every migration", pending, err)
	}

	// Several processes starting at once: without the advisory lock they would race to create
	// the same tables.
	const n = 6
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { errs[i] = jobs.Migrate(ctx, db.Pool, quiet()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate %d: %v", i, err)
		}
	}
	if err := jobs.Migrate(ctx, db.Pool, quiet()); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}

	for _, table := range []string{"river_job", "river_leader", "river_queue", "river_migration"} {
		var exists bool
		if err := db.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil || !exists {
			t.Errorf("table %s after Migrate: exists=%t, %v", table, exists, err)
		}
	}
	var rows, versions int
	if err := db.Pool.QueryRow(ctx, "SELECT count(*), count(DISTINCT version) FROM river_migration").Scan(&rows, &versions); err != nil {
		t.Fatal(err)
	}
	if rows != len(pending) || versions != len(pending) {
		t.Errorf("river_migration has %d rows, %d versions; want each of the %d migrations once", rows, versions, len(pending))
	}
	if pending, err := jobs.Pending(ctx, db.Pool); err != nil || len(pending) != 0 {
		t.Errorf("Pending after Migrate = %v, %v; want none", pending, err)
	}
}

func TestMigrateWithAPoolOfOneConnection(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	pool := onePool(t, db.URL)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := jobs.Migrate(ctx, pool, quiet()); err != nil {
		t.Fatalf("Migrate on a pool of one connection: %v", err)
	}
}
