package status

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/pgcluster"
)

// connectTimeout bounds connecting when the settings name no connect_timeout: a health check
// that hangs on a black-holed host is worse than one that says "unreachable".
const connectTimeout = 5 * time.Second

// connect connects for the check, or records in rep why it cannot (and returns a nil pool). The
// returned error is for bad settings only.
//
// With no database configured, the other commands start the embedded cluster (creating it the
// first time). status does not: it is asked what is, and starting a server (or running initdb)
// would change the answer and leave a process behind that nobody asked for. A stopped cluster is
// reported as such, exit 1, with `cairn db start` as the fix.
func connect(ctx context.Context, opts Options, rep *Report) (*pgxpool.Pool, error) {
	cfg := opts.Config
	if !cfg.DatabaseConfigured() {
		cl, err := pgcluster.New(pgcluster.Options{DataDir: opts.DataDir, Logger: opts.Logger})
		if err != nil {
			rep.Database.Error = err.Error()
			rep.problem("database_unreachable", true, "no database is configured (DATABASE_URL / PG*) and the embedded cluster cannot be used: %v", err)
			return nil, nil
		}
		st, err := cl.Status(ctx)
		rep.Database.Embedded = &Embedded{DataDir: st.DataDir, Initialized: st.Initialized, Running: st.Running}
		if !st.Running {
			rep.Database.Error = "the embedded cluster is not running"
			rep.problem("embedded_cluster_stopped", true, "no database is configured (DATABASE_URL / PG*) and the embedded cluster in %s is not running: `cairn db start` starts it (or set DATABASE_URL)", st.DataDir)
			return nil, nil
		}
		if err != nil {
			rep.Database.Error = err.Error()
			rep.problem("database_unreachable", true, "%v", err)
			return nil, nil
		}
		cfg.DatabaseURL = st.ConnString
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	// Belt and braces: a status check that wrote anything would be a bug, and this way the
	// server refuses the write rather than letting it happen.
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = connectTimeout
	}
	// One query at a time: no connections kept warm in the background.
	pc.MinConns = 0
	rep.Database.Target = db.Target(pc.ConnConfig.Config)
	pool, err := db.Open(ctx, pc)
	if err != nil {
		rep.Database.Error = err.Error()
		rep.problem("database_unreachable", true, "%v", err)
		return nil, nil
	}
	rep.Database.Reachable = true
	return pool, nil
}

// collector fills a report from a reachable database.
type collector struct {
	opts Options
	pool *pgxpool.Pool
	rep  *Report
}

// collect runs every check. It returns an error when a query fails, a settingsError for bad
// embedder settings.
func (c *collector) collect(ctx context.Context) error {
	for _, check := range []func(context.Context) error{c.server, c.schema, c.role, c.domains, c.knowledge, c.queue} {
		if err := check(ctx); err != nil {
			return err
		}
	}
	return nil
}

// server reads the versions of PostgreSQL and pgvector.
func (c *collector) server(ctx context.Context) error {
	d := &c.rep.Database
	err := c.pool.QueryRow(ctx, serverVersionsSQL).
		Scan(&d.PostgresVersion, &d.Pgvector, &d.PgvectorAvailable)
	if err != nil {
		return fmt.Errorf("read server versions: %w", err)
	}
	return nil
}

// role reports the role cairn connects as, and whether pgvector is missing.
func (c *collector) role(ctx context.Context) error {
	rep, d := c.rep, &c.rep.Database
	super, role, err := db.Superuser(ctx, c.pool)
	if err != nil {
		return err
	}
	d.Role, d.Superuser = role, super
	// The embedded cluster is cairn's own: its one role is a superuser by construction.
	if super && d.Embedded == nil {
		rep.warn("%s", db.SuperuserWarning)
	}
	if d.Pgvector == "" {
		if d.PgvectorAvailable != "" {
			rep.problem("pgvector_missing", false, "pgvector %s is on the server but not installed in this database, so the knowledge graph is unavailable: run `cairn migrate` as a role that may CREATE EXTENSION (or have an administrator run CREATE EXTENSION vector)", d.PgvectorAvailable)
		} else {
			rep.problem("pgvector_missing", false, "pgvector is not installed on the server, so the knowledge graph is unavailable: install postgresql-NN-pgvector (scripts/ensure-pgvector.sh), then run `cairn migrate`")
		}
	}
	return nil
}

// isUndefinedTable reports whether err says a table does not exist (a schema behind).
func isUndefinedTable(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == "42P01"
}
