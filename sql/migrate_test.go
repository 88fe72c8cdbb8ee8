package sql_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/testdb"
	cairnsql "github.com/cairn-mcp/cairn/sql"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestConcurrentMigrationsDoNotRace starts several migrators on one empty database at once, as
// several `cairn serve` processes starting together would: each migration is applied once.
func TestConcurrentMigrationsDoNotRace(t *testing.T) {
	conn := testdb.Empty(t, "cairn_migrate_test_", "")
	cfg := conn.Config()
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make(chan int, 6)
	errs := make(chan error, 6)
	for range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pc, _ := pgxpool.ParseConfig("")
			pc.ConnConfig = cfg.Copy()
			pool, err := pgxpool.NewWithConfig(ctx, pc)
			if err != nil {
				errs <- err
				return
			}
			defer pool.Close()
			done, err := cairnsql.Migrate(ctx, pool, quiet())
			if err != nil {
				errs <- err
				return
			}
			applied <- len(done)
		}()
	}
	wg.Wait()
	close(applied)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	total := 0
	for n := range applied {
		total += n
	}
	ms, _ := cairnsql.Migrations()
	if total != len(ms) {
		t.Errorf("migrations applied %d times in all, want each of %d once", total, len(ms))
	}
	v, err := cairnsql.Version(ctx, conn)
	if err != nil || v != cairnsql.Latest() {
		t.Errorf("version = %d, %v; want %d", v, err, cairnsql.Latest())
	}
}

func TestNewerDatabaseIsRefused(t *testing.T) {
	conn := testdb.Empty(t, "cairn_migrate_test_", "")
	ctx := context.Background()
	pc, _ := pgxpool.ParseConfig("")
	pc.ConnConfig = conn.Config().Copy()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := cairnsql.Migrate(ctx, pool, quiet()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO cairn_migrations (version, name) VALUES (9999, 'from_the_future')"); err != nil {
		t.Fatal(err)
	}
	_, err = cairnsql.Migrate(ctx, pool, quiet())
	var tooNew *cairnsql.TooNewError
	if !errors.As(err, &tooNew) || tooNew.Database != 9999 {
		t.Fatalf("want TooNewError, got %v", err)
	}
}

func TestVersionOfUnmigratedDatabaseIsZero(t *testing.T) {
	conn := testdb.Empty(t, "cairn_migrate_test_", "")
	if v, err := cairnsql.Version(context.Background(), conn); err != nil || v != 0 {
		t.Fatalf("version = %d, %v", v, err)
	}
}
