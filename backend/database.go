// Package backend is what a cairn process runs on besides its transport: the database pools
// (the configured server, or the embedded cluster started on demand), the schema brought up to
// date, the knowledge graph with its embedder, and the background job client. serve, worker and
// the one-shot commands share it.
package backend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/pgcluster"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/migrations"
)

// PoolConfig is cfg's pool configuration. Without a configured database it starts the embedded
// cluster in dataDir ("" the default) unless it runs, and points cfg at it, so that every later
// use of cfg (client programs, a second pool) reaches the same cluster.
func PoolConfig(ctx context.Context, cfg *config.Config, dataDir string, log *slog.Logger) (*pgxpool.Config, error) {
	if !cfg.DatabaseConfigured() {
		cl, err := pgcluster.New(pgcluster.Options{DataDir: dataDir, Logger: log})
		if err != nil {
			var mb *pgcluster.MissingBinariesError
			if errors.As(err, &mb) {
				return nil, mb
			}
			return nil, fmt.Errorf("embedded PostgreSQL: %w", err)
		}
		if err := cl.Start(ctx); err != nil {
			return nil, fmt.Errorf("start embedded PostgreSQL in %s: %w", cl.DataDir(), err)
		}
		log.Info("no database configured (DATABASE_URL / PG*): using the embedded cluster", "data_dir", cl.DataDir())
		cfg.DatabaseURL = cl.ConnString()
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	return pc, nil
}

// Connect resolves where the database is (as PoolConfig) and opens a pool on it, or on the
// database dbname of the same server unless dbname is "".
func Connect(ctx context.Context, cfg *config.Config, dataDir, dbname string) (*pgxpool.Pool, error) {
	pc, err := PoolConfig(ctx, cfg, dataDir, slog.Default())
	if err != nil {
		return nil, err
	}
	if dbname != "" {
		pc.ConnConfig.Database = dbname
	}
	return db.Open(ctx, pc)
}

// EmbeddedDataDir is where the embedded cluster keeps its data: dataDir, or the default.
func EmbeddedDataDir(dataDir string) string {
	cl, err := pgcluster.New(pgcluster.Options{DataDir: dataDir})
	if err != nil {
		return dataDir
	}
	return cl.DataDir()
}

// Migrate applies cairn's migrations, then River's (its job tables live in the same database),
// and returns cairn's.
func Migrate(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) ([]migrations.Migration, error) {
	applied, err := migrations.Migrate(ctx, pool, log)
	if err != nil {
		return applied, err
	}
	return applied, jobs.Migrate(ctx, pool, log)
}

// PrepareSchema migrates at start, or with noMigrate only warns when a schema is behind: a
// process that may not change the schema still tells the operator what to run.
func PrepareSchema(ctx context.Context, pool *pgxpool.Pool, noMigrate bool, log *slog.Logger) error {
	if !noMigrate {
		_, err := Migrate(ctx, pool, log)
		return err
	}
	v, err := migrations.Version(ctx, pool)
	if err != nil {
		return err
	}
	if v < migrations.Latest() {
		log.Warn("database schema is behind this cairn; run `cairn migrate`", "database", v, "cairn", migrations.Latest())
	}
	pending, err := jobs.Pending(ctx, pool)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		log.Warn("River's job tables are behind this cairn; run `cairn migrate`", "pending", pending)
	}
	return nil
}
