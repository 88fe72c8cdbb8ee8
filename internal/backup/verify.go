package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// VerifyOptions are the settings of Verify.
type VerifyOptions struct {
	// BinDir holds pg_restore (--pg-bindir); "" searches.
	BinDir string
	// Progress receives a line per step; nil for none.
	Progress io.Writer
}

// Verify proves that an archive restores to what its manifest says: it checks the checksum,
// restores the archive into a scratch database on the server pool connects to (CREATE DATABASE
// cairn_verify_<random>, which needs the CREATEDB privilege; dropped afterwards whatever
// happens) and compares every table's row count with the manifest's. conn reaches the same
// server for pg_restore.
func Verify(ctx context.Context, pool *pgxpool.Pool, conn Conn, archive string, m *Manifest, opts VerifyOptions) (err error) {
	out := opts.Progress
	if out == nil {
		out = io.Discard
	}
	step := func(format string, args ...any) { fmt.Fprintf(out, "verify: "+format+"\n", args...) }
	if err := CheckChecksum(archive, m); err != nil {
		return err
	}
	step("checksum matches the manifest")
	tool, err := findRestoreTool(ctx, opts.BinDir, m)
	if err != nil {
		return err
	}

	var serverVersion int
	if err := pool.QueryRow(ctx, serverVersionNumSQL).Scan(&serverVersion); err != nil {
		return fmt.Errorf("read the server version: %w", err)
	}
	name := "cairn_verify_" + randomHex(6)
	// The default template (template1), not template0: where the vector extension may only be
	// created by a superuser, an administrator can install it in template1 once.
	if _, err := pool.Exec(ctx, fmt.Sprintf(createDatabaseSQL, pgx.Identifier{name}.Sanitize())); err != nil {
		return fmt.Errorf("create the scratch database %s (the role needs CREATEDB): %w", name, err)
	}
	defer func() {
		if derr := dropDatabase(ctx, pool, name, serverVersion); derr != nil && err == nil {
			err = derr
		}
	}()
	cfg := pool.Config().ConnConfig.Copy()
	cfg.Database = name
	scratch, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to the scratch database %s: %w", name, err)
	}
	defer scratch.Close(context.WithoutCancel(ctx))
	if _, err := prepareTarget(ctx, scratch, name, m, false, false); err != nil {
		return err
	}
	step("restoring into scratch database %s", name)
	if err := pgRestore(ctx, tool, conn.WithDatabase(name), archive, m); err != nil {
		return err
	}
	counts, err := countRowsUnlimited(ctx, scratch, m.Schema)
	if err != nil {
		return err
	}
	if err := compareCounts(m.Tables, counts); err != nil {
		return err
	}
	step("row counts match the manifest: %d table(s), %d row(s)", len(m.Tables), m.Rows())
	return nil
}

// dropDatabase drops the scratch database even when ctx is cancelled (Ctrl-C during --verify).
// WITH (FORCE), from PostgreSQL 13, ends sessions a killed pg_restore may have left behind.
func dropDatabase(ctx context.Context, pool *pgxpool.Pool, name string, serverVersion int) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	q := fmt.Sprintf(dropDatabaseSQL, pgx.Identifier{name}.Sanitize())
	if serverVersion >= 130000 {
		q += dropDatabaseForceSQL
	}
	if _, err := pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("drop the scratch database %s (drop it by hand): %w", name, err)
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
