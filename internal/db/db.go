// Package db opens cairn's connection pool and turns connection failures into errors that say
// where cairn tried to connect and what to check.
package db

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Open creates the pool and checks that the database answers, so a wrong setting fails at start
// with a clear message rather than on the first tool call.
func Open(ctx context.Context, pc *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := OpenLazy(ctx, pc)
	if err != nil {
		return nil, err
	}
	if err := Ping(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	return pool, nil
}

// OpenLazy opens a pool that connects when it is first used, not before: a process can start
// serving while its first connection is being made. Ping says whether it can connect.
func OpenLazy(ctx context.Context, pc *pgxpool.Config) (*pgxpool.Pool, error) {
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("open pool for %s: %w", Target(pc.ConnConfig.Config), err)
	}
	return pool, nil
}

// Ping connects through pool if it has no connection yet, with ConnectError's advice if it
// cannot.
func Ping(ctx context.Context, pool *pgxpool.Pool) error {
	if err := pool.Ping(ctx); err != nil {
		return ConnectError(pool.Config().ConnConfig.Config, err)
	}
	return nil
}

// Target describes where a configuration points, without the password: user@host:port/dbname.
func Target(c pgconn.Config) string {
	host := c.Host
	if strings.HasPrefix(host, "/") {
		host = "unix socket " + host
	} else {
		host = net.JoinHostPort(host, fmt.Sprint(c.Port))
	}
	if strings.HasPrefix(c.Host, "/") {
		host = fmt.Sprintf("%s (port %d)", host, c.Port)
	}
	return fmt.Sprintf("database %q as user %q at %s", c.Database, c.User, host)
}

// ConnectError wraps a failed connection attempt with the target and the likely fix.
func ConnectError(c pgconn.Config, err error) error {
	hint := "check that PostgreSQL is running there (pg_isready) and that DATABASE_URL or PGHOST/PGPORT/PGDATABASE/PGUSER are right"
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "28P01", "28000":
			hint = "the server refused the credentials: check PGUSER and PGPASSWORD / PGPASSWORD_FILE (or the password in DATABASE_URL)"
		case "3D000":
			hint = fmt.Sprintf("the database does not exist: create it (createdb %s) or point PGDATABASE / DATABASE_URL at another", c.Database)
		case "53300":
			hint = "the server has no free connection slots: lower --pool-max or raise max_connections"
		}
	}
	return fmt.Errorf("cannot connect to %s: %w; %s", Target(c), err, hint)
}

// SuperuserWarning is what cairn says when it connects as a superuser: permissions refine what
// the database role may do, and a superuser may do anything — signal any backend, read any file
// the server can, run programs through COPY — through whatever permissions cannot see.
const SuperuserWarning = "cairn connects as a PostgreSQL superuser: whatever a caller's SQL reaches that permissions cannot see (function and trigger bodies, views) runs with a superuser's power; connect as a role with only what cairn needs (docs/deploy.md, \"Least privilege\")"

// Superuser reports whether the pool's role is a superuser, and its name.
func Superuser(ctx context.Context, pool *pgxpool.Pool) (bool, string, error) {
	var super bool
	var name string
	if err := pool.QueryRow(ctx, currentRoleSQL).Scan(&super, &name); err != nil {
		return false, "", fmt.Errorf("read the connected role: %w", err)
	}
	return super, name, nil
}
