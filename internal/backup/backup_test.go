package backup

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/migrations"
)

var quiet = slog.New(slog.DiscardHandler)

// connFor is the client programs' connection to the database a pgx connection reaches.
func connFor(t *testing.T, cfg *pgx.ConnConfig) Conn {
	t.Helper()
	s := fmt.Sprintf("host='%s' port=%d user='%s' dbname='%s' sslmode=disable", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	c, err := NewConn(s, &cfg.Config)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// pgxpoolFrom opens a pool on what cfg connects to.
func pgxpoolFrom(ctx context.Context, cfg *pgx.ConnConfig) (*pgxpool.Pool, error) {
	pc, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, err
	}
	pc.ConnConfig = cfg.Copy()
	return pgxpool.NewWithConfig(ctx, pc)
}

// sourceDB is a migrated database with a few rows in cairn's tables.
func sourceDB(t *testing.T) (*testdb.DB, Conn) {
	t.Helper()
	db := testdb.New(t)
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO agents (agent_id, template) VALUES ('a1', 'coder'), ('a2', 'researcher')`); err != nil {
		t.Fatal(err)
	}
	return db, connFor(t, db.Pool.Config().ConnConfig)
}

func TestCreateVerifyRestore(t *testing.T) {
	ctx := context.Background()
	db, conn := sourceDB(t)
	out := filepath.Join(t.TempDir(), "x.dump")
	var progress bytes.Buffer
	m, err := Create(ctx, db.Pool, conn, Options{Out: out, Verify: true, CairnVersion: "test", Progress: &progress, Log: quiet})
	if err != nil {
		t.Fatalf("Create: %v\n%s", err, progress.String())
	}
	if m.Tables["agents"] != 2 || m.CairnVersion != "test" || m.Archive != "x.dump" {
		t.Errorf("manifest %+v", m)
	}
	for _, line := range []string{"backup x.dump: ", "verify: checksum matches", "verify: row counts match the manifest"} {
		if !strings.Contains(progress.String(), line) {
			t.Errorf("progress lacks %q:\n%s", line, progress.String())
		}
	}
	var exists *ExistsError
	if _, err := Create(ctx, db.Pool, conn, Options{Out: out, Log: quiet}); !errors.As(err, &exists) {
		t.Errorf("second Create to the same file: %v, want *ExistsError", err)
	}

	target := testdb.Empty(t, "cairn_restore_", "")
	tconn := connFor(t, target.Config())
	var steps []string
	opts := RestoreOptions{Step: func(s string) { steps = append(steps, s) }}
	if err := Restore(ctx, target, tconn, out, m, opts); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if len(steps) < 3 {
		t.Errorf("steps %q", steps)
	}
	var n int
	if err := target.QueryRow(ctx, "SELECT count(*) FROM agents").Scan(&n); err != nil || n != 2 {
		t.Errorf("restored agents: %d, %v", n, err)
	}

	// Again: the target now holds the tables.
	var notEmpty *NotEmptyError
	if err := Restore(ctx, target, tconn, out, m, opts); !errors.As(err, &notEmpty) || len(notEmpty.Tables) != len(m.Tables) {
		t.Fatalf("restore over a restored database: %v, want *NotEmptyError listing %d tables", err, len(m.Tables))
	}
	if _, err := target.Exec(ctx, `CREATE TABLE extra (x int); CREATE FUNCTION extra_f() RETURNS int LANGUAGE sql AS 'SELECT 1';
		CREATE TYPE extra_mood AS ENUM ('ok'); CREATE DOMAIN extra_pos AS int CHECK (VALUE > 0); DELETE FROM agents WHERE agent_id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	opts.Clean = true
	if err := Restore(ctx, target, tconn, out, m, opts); err != nil {
		t.Fatalf("Restore --clean: %v", err)
	}
	var extra []string
	err = target.QueryRow(ctx, `SELECT array_remove(ARRAY[to_regclass('extra')::text, to_regproc('extra_f')::text, to_regtype('extra_mood')::text, to_regtype('extra_pos')::text], NULL)`).Scan(&extra)
	if err != nil || len(extra) > 0 {
		t.Errorf("--clean left %v (%v)", extra, err)
	}
	if err := target.QueryRow(ctx, "SELECT count(*) FROM agents").Scan(&n); err != nil || n != 2 {
		t.Errorf("agents after --clean: %d, %v", n, err)
	}
}

func TestRestoreRefusesAnotherSearchPath(t *testing.T) {
	ctx := context.Background()
	db, conn := sourceDB(t)
	out := filepath.Join(t.TempDir(), "x.dump")
	m, err := Create(ctx, db.Pool, conn, Options{Out: out, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	target := testdb.Empty(t, "cairn_restore_", "")
	if _, err := target.Exec(ctx, "CREATE SCHEMA elsewhere"); err != nil {
		t.Fatal(err)
	}
	cfg := target.Config().Copy()
	cfg.RuntimeParams["search_path"] = "elsewhere"
	other, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(ctx)
	var mismatch *SchemaMismatchError
	if err := Restore(ctx, other, connFor(t, cfg), out, m, RestoreOptions{}); !errors.As(err, &mismatch) || mismatch.Target != "elsewhere" {
		t.Fatalf("Restore with search_path elsewhere: %v, want *SchemaMismatchError", err)
	}
}

func TestCreateFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	// Not a cairn database.
	empty := testdb.Empty(t, "cairn_nobackup_", "")
	pc, err := pgxpoolFrom(ctx, empty.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	out := filepath.Join(dir, "none.dump")
	if _, err := Create(ctx, pc, connFor(t, empty.Config()), Options{Out: out, Log: quiet}); !errors.Is(err, migrations.ErrNotMigrated) {
		t.Errorf("Create of an empty database: %v, want ErrNotMigrated", err)
	}
	if _, err := os.Stat(out + ".partial"); err == nil {
		t.Error("a failed Create left its .partial file")
	}

	// pg_dump fails: the server refuses the connection string's database.
	db, conn := sourceDB(t)
	out = filepath.Join(dir, "bad.dump")
	_, err = Create(ctx, db.Pool, conn.WithDatabase("cairn_no_such_database"), Options{Out: out, Log: quiet})
	var te *ToolError
	if !errors.As(err, &te) || !strings.Contains(err.Error(), "cairn_no_such_database") {
		t.Errorf("Create with pg_dump failing: %v, want a *ToolError naming the database", err)
	}
	for _, p := range []string{out, out + ".partial", out + ManifestSuffix} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("a failed Create left %s", p)
		}
	}
}
