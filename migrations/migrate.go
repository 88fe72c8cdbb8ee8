// Package migrations holds cairn's schema: versioned migrations embedded as .sql files, and the
// code that applies them under an advisory lock so that concurrent `cairn serve` / `cairn
// migrate` processes never race.
package migrations

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

//go:embed *.sql
var migrationFiles embed.FS

// lockKey is the advisory lock that serializes migrations across processes ("cairn" in ASCII).
const lockKey int64 = 0x636169726e

// Migration is one versioned schema change.
type Migration struct {
	Version int
	Name    string
	SQL     string
	// Requires names the extension the migration needs (its first line reads
	// "-- requires: <extension>"). Without it installed the migration is deferred, not failed:
	// the rest of cairn works, and the next migrate after the extension is installed applies it.
	Requires string
}

// Migrations returns the embedded migrations in version order.
func Migrations() ([]Migration, error) {
	entries, err := fs.ReadDir(migrationFiles, ".")
	if err != nil {
		return nil, fmt.Errorf("read embedded migrations: %w", err)
	}
	var ms []Migration
	for _, e := range entries {
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration file %s: name must be NNNN_name.sql", e.Name())
		}
		body, err := migrationFiles.ReadFile(e.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		m := Migration{Version: v, Name: name, SQL: string(body)}
		first, _, _ := strings.Cut(m.SQL, "\n")
		if ext, ok := strings.CutPrefix(strings.TrimSpace(first), "-- requires:"); ok {
			m.Requires = strings.TrimSpace(ext)
		}
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i := 1; i < len(ms); i++ {
		if ms[i].Version == ms[i-1].Version {
			return nil, fmt.Errorf("two migrations with version %d", ms[i].Version)
		}
	}
	return ms, nil
}

// Latest is the version of the newest embedded migration.
func Latest() int {
	ms, err := Migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].Version
}

// TooNewError says the database was migrated by a newer cairn than this one.
type TooNewError struct{ Database, Binary int }

func (e *TooNewError) Error() string {
	return fmt.Sprintf("database schema is at migration %d but this cairn knows only up to %d: upgrade cairn (an older binary could misread newer tables)", e.Database, e.Binary)
}

// Migrate applies every pending migration, each in its own transaction, holding an advisory lock
// for the whole run. It returns the migrations it applied.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) ([]Migration, error) {
	ms, err := Migrations()
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("migrate: acquire connection: %w", err)
	}
	defer conn.Release()

	start := time.Now()
	if _, err := conn.Exec(ctx, migrateLockSQL, lockKey); err != nil {
		return nil, fmt.Errorf("migrate: take advisory lock: %w", err)
	}
	defer func() {
		// A fresh context: the lock must be released even when ctx was cancelled.
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, migrateUnlockSQL, lockKey); err != nil {
			conn.Conn().Close(uctx) // closing the session drops the lock
		}
	}()
	if waited := time.Since(start); waited > time.Second {
		log.Info("waited for another process's migration", "waited", waited.Round(time.Millisecond))
	}

	if _, err := conn.Exec(ctx, createMigrationsTableSQL); err != nil {
		return nil, fmt.Errorf("migrate: create cairn_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn.Conn())
	if err != nil {
		return nil, err
	}
	if n := maxKey(applied); len(ms) > 0 && n > ms[len(ms)-1].Version {
		return nil, &TooNewError{Database: n, Binary: ms[len(ms)-1].Version}
	}
	var done []Migration
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		if m.Requires != "" {
			var installed bool
			if err := conn.QueryRow(ctx, extensionInstalledSQL, m.Requires).Scan(&installed); err != nil {
				return done, fmt.Errorf("migration %04d_%s: check extension %s: %w", m.Version, m.Name, m.Requires, err)
			}
			if !installed {
				log.Warn("migration deferred: its extension is not installed; install it and run `cairn migrate`",
					"version", m.Version, "name", m.Name, "extension", m.Requires)
				continue
			}
		}
		t := time.Now()
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, recordMigrationSQL, m.Version, m.Name)
			return err
		})
		if err != nil {
			return done, fmt.Errorf("migration %04d_%s failed (nothing of it was applied): %w", m.Version, m.Name, err)
		}
		log.Info("applied migration", "version", m.Version, "name", m.Name, "took", time.Since(t).Round(time.Millisecond))
		done = append(done, m)
	}
	return done, nil
}

// Version returns the newest applied migration, 0 for a database cairn has never migrated.
func Version(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) (int, error) {
	var v int
	err := q.QueryRow(ctx, latestMigrationSQL).Scan(&v)
	if err != nil {
		var missing bool
		if qerr := q.QueryRow(ctx, migrationsTableMissingSQL).Scan(&missing); qerr == nil && missing {
			return 0, nil
		}
		return 0, fmt.Errorf("read migration version: %w", err)
	}
	return v, nil
}

func appliedVersions(ctx context.Context, conn *pgx.Conn) (map[int]bool, error) {
	rows, err := conn.Query(ctx, appliedVersionsSQL)
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("migrate: read applied versions: %w", err)
	}
	m := make(map[int]bool, len(vs))
	for _, v := range vs {
		m[v] = true
	}
	return m, nil
}

func maxKey(m map[int]bool) int {
	n := 0
	for k := range m {
		n = max(n, k)
	}
	return n
}

// ErrNotMigrated is returned by callers that need a migrated database and find none.
var ErrNotMigrated = errors.New("database has no cairn schema: run `cairn migrate` (or start `cairn serve` without --no-migrate)")
