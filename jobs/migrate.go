package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// lockKey is the advisory lock that serializes River's migrations across processes ("cairnjob"
// in ASCII). rivermigrate takes no lock of its own: two processes starting at once would both
// try to create River's tables. It is not sql/migrate.go's key, so that neither kind of migration
// is held up by the other, and it stays clear of River's own lock keys (hashes of job keys).
const lockKey int64 = 0x636169726e6a6f62

// Migrate applies River's pending migrations (its job, queue and leader tables) under an
// advisory lock, so that any number of cairn processes may call it at once.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) error {
	if log == nil {
		log = slog.Default()
	}
	migrator, err := newMigrator(pool, log)
	if err != nil {
		return err
	}
	unlock, err := lock(ctx, pool, log)
	if err != nil {
		return err
	}
	defer unlock()
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, nil)
	if err != nil {
		return fmt.Errorf("River migrations: %w", err)
	}
	for _, v := range res.Versions {
		log.Info("applied River migration", "version", v.Version, "name", v.Name, "took", v.Duration.Round(time.Millisecond))
	}
	return nil
}

// Pending returns the River migrations the database lacks, for callers that must not migrate
// (--no-migrate) but should say when the job tables are behind.
func Pending(ctx context.Context, pool *pgxpool.Pool) ([]int, error) {
	migrator, err := newMigrator(pool, slog.Default())
	if err != nil {
		return nil, err
	}
	res, err := migrator.Migrate(ctx, rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{DryRun: true})
	if err != nil {
		return nil, fmt.Errorf("read River migration state: %w", err)
	}
	var vs []int
	for _, v := range res.Versions {
		vs = append(vs, v.Version)
	}
	return vs, nil
}

func newMigrator(pool *pgxpool.Pool, log *slog.Logger) (*rivermigrate.Migrator[pgx.Tx], error) {
	// Without a logger of ours rivermigrate would log to stdout, the stdio transport's stream.
	m, err := rivermigrate.New(riverpgxv5.New(pool), &rivermigrate.Config{Logger: riverLogger(log, nil)})
	if err != nil {
		return nil, fmt.Errorf("River migrator: %w", err)
	}
	return m, nil
}

// lock takes the migration lock on a connection of its own and returns its release. The
// migrator runs on the pool, so holding the lock on a pooled connection would leave a pool of
// one connection waiting for itself.
func lock(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) (func(), error) {
	cc := pool.Config().ConnConfig.Copy()
	if cc.RuntimeParams == nil {
		cc.RuntimeParams = map[string]string{}
	}
	// Waiting for another process's migration is not a runaway statement.
	cc.RuntimeParams["statement_timeout"] = "0"
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		return nil, fmt.Errorf("River migrations: connect for the advisory lock: %w", err)
	}
	// Ending the session releases the lock, also when ctx was cancelled.
	release := func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		conn.Close(cctx)
	}
	start := time.Now()
	if _, err := conn.Exec(ctx, migrateLockSQL, lockKey); err != nil {
		release()
		return nil, fmt.Errorf("River migrations: take advisory lock: %w", err)
	}
	if waited := time.Since(start); waited > time.Second {
		log.Info("waited for another process's River migration", "waited", waited.Round(time.Millisecond))
	}
	return release, nil
}
