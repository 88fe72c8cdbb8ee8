// Package testdb gives each test its own migrated PostgreSQL database, cloned from a template
// that is migrated once per schema version, so tests run in parallel against real PostgreSQL.
// The server comes from the environment (DATABASE_URL or PG*), as `make test` sets it up; with
// none reachable a test fails — it never skips.
package testdb

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/migrations"
)

// DB is one test's database.
type DB struct {
	Name string
	URL  string // connection string for the test database
	Pool *pgxpool.Pool
}

// New creates a migrated database for the test and drops it when the test ends.
func New(t testing.TB) *DB {
	t.Helper()
	return newDB(t, "")
}

// AppRole is the role NewApp's databases belong to: a login role that is not a superuser, may
// not create databases or roles, and owns cairn's objects — what docs/deploy.md recommends.
const AppRole = "cairn_app"

// NewApp is New for a database that cairn reaches as AppRole, migrated by that role (the vector
// extension, which only a superuser may create, is created first), so a test sees what a
// least-privilege deployment sees.
func NewApp(t testing.TB) *DB {
	t.Helper()
	return newDB(t, AppRole)
}

func newDB(t testing.TB, owner string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin := Admin(t)
	tmpl, err := template(ctx, admin, owner)
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	opts := "TEMPLATE " + tmpl
	if owner != "" {
		opts += " OWNER " + owner
	}
	name := create(t, admin, "cairn_test_", opts)
	cc := admin.Config().Copy()
	if owner != "" {
		cc.User = owner
	}
	url := connString(cc, name)
	pc, err := (&config.Config{DatabaseURL: url, StatementTimeout: config.DefaultStatementTimeout, PoolMin: 1, PoolMax: 10}).PoolConfig()
	if err != nil {
		t.Fatalf("testdb: %v", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		t.Fatalf("testdb: connect to %s: %v", name, err)
	}
	t.Cleanup(pool.Close) // before the drop: cleanups run last-registered first
	return &DB{Name: name, URL: url, Pool: pool}
}

// Empty creates an empty database (CREATE DATABASE <prefix><random> <options>), dropped when the
// test ends, and returns a connection to it.
func Empty(t testing.TB, prefix, options string) *pgx.Conn {
	t.Helper()
	admin := Admin(t)
	name := create(t, admin, prefix, options)
	cfg := admin.Config().Copy()
	cfg.Database = name
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("testdb: connect to %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Admin connects to the test server's default database, closed when the test ends. No server is
// a failure: run `make test`, which starts one.
func Admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatalf("testdb: no PostgreSQL for tests (%v): run `make test`, which starts one, or set DATABASE_URL / PGHOST to a server with pgvector", err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return admin
}

// create makes a database with a random name and drops it (forcibly) when the test ends.
func create(t testing.TB, admin *pgx.Conn, prefix, options string) string {
	t.Helper()
	name := prefix + randHex(6)
	if _, err := admin.Exec(context.Background(), "CREATE DATABASE "+name+" "+options); err != nil {
		t.Fatalf("testdb: create database %s: %v", name, err)
	}
	cfg := admin.Config().Copy()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("testdb: drop %s: %v", name, err)
		}
	})
	return name
}

// template returns the name of a database migrated to the current schema, creating it under an
// advisory lock the first time (several test binaries run at once). With owner set, the
// database and everything the migrations create belong to that role (created if missing).
func template(ctx context.Context, admin *pgx.Conn, owner string) (string, error) {
	ms, err := migrations.Migrations()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, m := range ms {
		fmt.Fprintf(h, "%d %s\n%s\n", m.Version, m.Name, m.SQL)
	}
	name := "cairn_tmpl_" + hex.EncodeToString(h.Sum(nil))[:12]
	if owner != "" {
		name = "cairn_tmpl_" + owner + "_" + hex.EncodeToString(h.Sum(nil))[:12]
	}

	if _, err := admin.Exec(ctx, "SELECT pg_advisory_lock(7215)"); err != nil {
		return "", fmt.Errorf("lock template creation: %w", err)
	}
	// The session ends with the test process at the latest, which releases the lock too.
	defer func() { _, _ = admin.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock(7215)") }()
	var exists bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1 AND datistemplate)", name).Scan(&exists); err != nil {
		return "", fmt.Errorf("look up template: %w", err)
	}
	if exists {
		return name, nil
	}
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
		return "", fmt.Errorf("drop half-made template: %w", err)
	}
	create := "CREATE DATABASE " + name
	cc := admin.Config().Copy()
	if owner != "" {
		var roleExists bool
		if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", owner).Scan(&roleExists); err != nil {
			return "", fmt.Errorf("look up role %s: %w", owner, err)
		}
		if !roleExists {
			if _, err := admin.Exec(ctx, "CREATE ROLE "+owner+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION"); err != nil {
				return "", fmt.Errorf("create role %s: %w", owner, err)
			}
		}
		create += " OWNER " + owner
		cc.User = owner
	}
	if _, err := admin.Exec(ctx, create); err != nil {
		return "", fmt.Errorf("create template: %w", err)
	}
	if owner != "" {
		// Only a superuser may create the vector extension; the rest is the owner's to migrate.
		c, err := pgx.Connect(ctx, connString(admin.Config(), name))
		if err != nil {
			return "", fmt.Errorf("connect to template: %w", err)
		}
		_, err = c.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS vector")
		c.Close(ctx)
		if err != nil {
			return "", fmt.Errorf("create the vector extension in the template: %w", err)
		}
	}
	pool, err := pgxpool.New(ctx, connString(cc, name))
	if err != nil {
		return "", fmt.Errorf("connect to template: %w", err)
	}
	_, err = migrations.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil)))
	pool.Close()
	if err != nil {
		return "", fmt.Errorf("migrate template: %w", err)
	}
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+name+" WITH is_template true"); err != nil {
		return "", fmt.Errorf("mark template: %w", err)
	}
	return name, nil
}

// connString points the admin connection's settings at another database.
func connString(c *pgx.ConnConfig, dbname string) string {
	s := fmt.Sprintf("host=%s port=%d user=%s dbname=%s", quote(c.Host), c.Port, quote(c.User), dbname)
	if c.Password != "" {
		s += " password=" + quote(c.Password)
	}
	if c.TLSConfig == nil {
		s += " sslmode=disable"
	}
	return s
}

func quote(s string) string {
	out := []byte{'\''}
	for i := 0; i < len(s); i++ {
		if s[i] == '\'' || s[i] == '\\' {
			out = append(out, '\\')
		}
		out = append(out, s[i])
	}
	return string(append(out, '\''))
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
