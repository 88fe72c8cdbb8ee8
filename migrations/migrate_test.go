package migrations_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/migrations"
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
			done, err := migrations.Migrate(ctx, pool, quiet())
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
	ms, _ := migrations.Migrations()
	if total != len(ms) {
		t.Errorf("migrations applied %d times in all, want each of %d once", total, len(ms))
	}
	v, err := migrations.Version(ctx, conn)
	if err != nil || v != migrations.Latest() {
		t.Errorf("version = %d, %v; want %d", v, err, migrations.Latest())
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
	if _, err := migrations.Migrate(ctx, pool, quiet()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "INSERT INTO cairn_migrations (version, name) VALUES (9999, 'from_the_future')"); err != nil {
		t.Fatal(err)
	}
	_, err = migrations.Migrate(ctx, pool, quiet())
	var tooNew *migrations.TooNewError
	if !errors.As(err, &tooNew) || tooNew.Database != 9999 {
		t.Fatalf("want TooNewError, got %v", err)
	}
}

func TestVersionOfUnmigratedDatabaseIsZero(t *testing.T) {
	conn := testdb.Empty(t, "cairn_migrate_test_", "")
	if v, err := migrations.Version(context.Background(), conn); err != nil || v != 0 {
		t.Fatalf("version = %d, %v", v, err)
	}
}

// TestMigrationNeedingAnExtensionWaitsForIt migrates as a role that may not create pgvector:
// everything but the knowledge graph is applied, the knowledge tools say what is missing, and the
// next migration after an administrator installs the extension applies the rest.
func TestMigrationNeedingAnExtensionWaitsForIt(t *testing.T) {
	t.Parallel()
	admin := testdb.Empty(t, "cairn_noext_", "")
	ctx := context.Background()
	db := admin.Config().Database
	role := db + "_owner"
	for _, stmt := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"ALTER DATABASE " + db + " OWNER TO " + role,
	} {
		if _, err := admin.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		// The database goes first: the role owns it.
		a := testdb.Admin(t)
		a.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
		a.Exec(ctx, "DROP ROLE IF EXISTS "+role)
	})
	pc, _ := pgxpool.ParseConfig("")
	pc.ConnConfig = admin.Config().Copy()
	pc.ConnConfig.User = role
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	done, err := migrations.Migrate(ctx, pool, quiet())
	if err != nil {
		t.Fatal(err)
	}
	ms, _ := migrations.Migrations()
	var deferred []string
	for _, m := range ms {
		if m.Requires != "" {
			deferred = append(deferred, m.Name)
		}
	}
	if len(deferred) == 0 || len(done) != len(ms)-len(deferred) {
		t.Fatalf("applied %d of %d migrations without pgvector; want all but %v", len(done), len(ms), deferred)
	}
	_, err = knowledge.New(pool, knowledge.Options{}).Search(ctx, knowledge.SearchQuery{Query: "anything"})
	if !errors.Is(err, knowledge.ErrUnavailable) || !strings.Contains(err.Error(), "pgvector") {
		t.Fatalf("knowledge without its tables: %v", err)
	}

	if _, err := admin.Exec(ctx, "CREATE EXTENSION vector"); err != nil {
		t.Fatal(err)
	}
	done, err = migrations.Migrate(ctx, pool, quiet())
	if err != nil {
		t.Fatal(err)
	}
	if len(done) != len(deferred) {
		t.Fatalf("after installing pgvector, applied %d migrations; want the %d deferred", len(done), len(deferred))
	}
	if _, err := knowledge.New(pool, knowledge.Options{}).Search(ctx, knowledge.SearchQuery{Query: "anything"}); err != nil {
		t.Fatalf("knowledge after the deferred migration: %v", err)
	}
}
