// Package backup makes and restores archives of cairn's data: a pg_dump custom-format archive of
// the schema that holds cairn's and River's tables, with the vector extension, and a manifest
// beside it that says what made the archive, what it must hold (row counts taken in the very
// snapshot it was dumped from) and its checksum.
package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/progress"
	"github.com/cairn-mcp/cairn/migrations"
)

// Options are the settings of Create.
type Options struct {
	// Out is the archive's path; the manifest goes beside it (Out + ManifestSuffix).
	Out string
	// Force replaces an existing archive and manifest.
	Force bool
	// BinDir holds pg_dump and pg_restore (--pg-bindir); "" searches PATH, then the newest
	// /usr/lib/postgresql/*/bin.
	BinDir string
	// Verify restores the archive into a scratch database before publishing it.
	Verify bool
	// CairnVersion is recorded in the manifest.
	CairnVersion string
	// Progress receives a bar of the bytes written and a line per verification step; nil for
	// none.
	Progress io.Writer
	Log      *slog.Logger
}

// ExistsError says the archive (or its manifest) is there already and Force was not set.
type ExistsError struct{ Path string }

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s exists: choose another --out, or pass --force to replace it", e.Path)
}

// vectorMinPgDump is the first pg_dump with --extension, which a schema-only dump needs to bring
// the vector extension along.
const vectorMinPgDump Version = 140000

// Create dumps cairn's schema to opts.Out and writes its manifest. It works on opts.Out +
// ".partial" and renames only at the end, so a failed or interrupted backup never leaves a file
// that looks complete.
func Create(ctx context.Context, pool *pgxpool.Pool, conn Conn, opts Options) (m *Manifest, err error) {
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	out, manifestPath := opts.Out, opts.Out+ManifestSuffix
	if !opts.Force {
		for _, p := range []string{out, manifestPath} {
			if _, err := os.Lstat(p); err == nil {
				return nil, &ExistsError{Path: p}
			} else if !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("check %s: %w", p, err)
			}
		}
	}
	partial, manifestPartial := out+".partial", manifestPath+".partial"
	defer func() {
		if err != nil {
			os.Remove(partial)
			os.Remove(manifestPartial)
		}
	}()
	// Created here rather than by pg_dump so that the archive is private from its first byte.
	f, err := os.OpenFile(partial, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("create the archive: %w", err)
	}
	f.Close()

	src, tool, err := dumpSnapshot(ctx, pool, conn, opts, partial)
	if err != nil {
		return nil, err
	}
	sum, size, err := fileSHA256(partial)
	if err != nil {
		return nil, err
	}
	if size == 0 {
		return nil, fmt.Errorf("pg_dump exited successfully but wrote nothing to %s", partial)
	}
	m = &Manifest{
		Format:           manifestFormat,
		CairnVersion:     opts.CairnVersion,
		CairnSchema:      src.cairnSchema,
		RiverSchema:      src.riverSchema,
		Schema:           src.schema,
		Database:         src.database,
		ServerVersion:    src.serverVersion,
		ServerVersionNum: src.serverVersionNum,
		PgDumpVersion:    tool.Release,
		Vector:           src.vector,
		VectorSchema:     src.vectorSchema,
		CreatedAt:        src.createdAt,
		Archive:          filepath.Base(out),
		Size:             size,
		SHA256:           sum,
		Tables:           src.counts,
	}
	if opts.Verify {
		if err := Verify(ctx, pool, conn, partial, m, VerifyOptions{BinDir: opts.BinDir, Progress: opts.Progress}); err != nil {
			return nil, fmt.Errorf("verify the new archive (not kept): %w", err)
		}
	}
	if err := m.write(manifestPartial); err != nil {
		return nil, err
	}
	// The manifest first, the archive last: the archive's name appearing is what says "done".
	if err := os.Rename(manifestPartial, manifestPath); err != nil {
		return nil, fmt.Errorf("publish the manifest: %w", err)
	}
	if err := os.Rename(partial, out); err != nil {
		os.Remove(manifestPath)
		return nil, fmt.Errorf("publish the archive: %w", err)
	}
	syncDir(filepath.Dir(out))
	return m, nil
}

// source is what the manifest records about the database, read in the dump's snapshot.
type source struct {
	schema, database         string
	serverVersion            string
	serverVersionNum         int
	serverMajor              Version
	cairnSchema, riverSchema int
	vector, vectorSchema     string
	counts                   map[string]int64
	createdAt                time.Time
	snapshot                 string
}

// dumpSnapshot runs pg_dump on a snapshot it holds open and returns what it read in that
// snapshot: the row counts in the manifest are then exactly the rows in the archive, however
// busy the database is.
func dumpSnapshot(ctx context.Context, pool *pgxpool.Pool, conn Conn, opts Options, partial string) (source, Tool, error) {
	c, err := pool.Acquire(ctx)
	if err != nil {
		return source{}, Tool{}, fmt.Errorf("connect: %w", err)
	}
	defer c.Release()
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return source{}, Tool{}, fmt.Errorf("begin the snapshot transaction: %w", err)
	}
	// Ends the transaction, and with it the exported snapshot, once pg_dump is done with it.
	defer tx.Rollback(context.WithoutCancel(ctx))
	src, err := readSource(ctx, tx)
	if err != nil {
		return source{}, Tool{}, err
	}
	need := Need{Version: src.serverMajor, Why: "the server's, " + src.serverMajor.MajorString()}
	if src.vector != "" && need.Version < vectorMinPgDump {
		need = Need{Version: vectorMinPgDump, Why: "14 for --extension vector, and the server's, " + src.serverMajor.MajorString()}
	}
	tool, err := FindTool(ctx, "pg_dump", opts.BinDir, need)
	if err != nil {
		return source{}, Tool{}, err
	}
	if src.vectorSchema != "" && src.vectorSchema != src.schema {
		opts.Log.Warn("the vector extension lives in another schema than cairn's tables; a restore creates that schema if it is missing",
			"extension_schema", src.vectorSchema, "schema", src.schema)
	}
	// Only cairn's schema and the vector extension, not the whole database: cairn often shares
	// its database (the README's example points it at an existing one), and a backup of cairn
	// should neither carry other applications' schemas nor, restored, overwrite them. Every table
	// of cairn and River lives in that one schema, and --extension brings the one extension the
	// tables need, so the archive still restores into an empty database.
	args := []string{"--format=custom", "--file=" + partial, "--snapshot=" + src.snapshot,
		"--schema=" + namePattern(src.schema), "--no-password"}
	if src.vector != "" {
		args = append(args, "--extension="+namePattern("vector"))
	}
	args = append(args, "--dbname="+conn.String())

	bar := progress.New(opts.Progress, "backup "+filepath.Base(opts.Out), 0, progress.Bytes)
	stop := watchSize(partial, bar)
	err = runTool(ctx, tool, conn, args...)
	stop()
	bar.Done()
	if err != nil {
		return source{}, Tool{}, err
	}
	return src, tool, nil
}

// readSource reads the manifest's facts and row counts in tx, and exports its snapshot.
func readSource(ctx context.Context, tx pgx.Tx) (source, error) {
	var src source
	// The transaction idles while pg_dump works, and counting a big table may take long: the
	// session's limits are for MCP calls, not for this.
	if _, err := tx.Exec(ctx, noStatementTimeoutSQL); err != nil {
		return src, fmt.Errorf("snapshot transaction: %w", err)
	}
	if _, err := tx.Exec(ctx, noIdleTimeoutSQL); err != nil {
		return src, fmt.Errorf("snapshot transaction: %w", err)
	}
	var schema *string
	err := tx.QueryRow(ctx, exportSnapshotSQL).
		Scan(&src.snapshot, &schema, &src.database, &src.createdAt, &src.serverVersion, &src.serverVersionNum)
	if err != nil {
		return src, fmt.Errorf("export a snapshot for pg_dump: %w", err)
	}
	if schema == nil {
		return src, errors.New("no current schema: none of the search_path's schemas exists, so there is no cairn schema to back up")
	}
	src.schema = *schema
	src.createdAt = src.createdAt.UTC()
	src.serverMajor = Version(src.serverVersionNum).Major()

	var hasCairn, hasRiver, riverLines bool
	err = tx.QueryRow(ctx, migrationTablesSQL, src.schema).Scan(&hasCairn, &hasRiver, &riverLines)
	if err != nil {
		return src, fmt.Errorf("look for cairn's tables: %w", err)
	}
	if !hasCairn {
		return src, fmt.Errorf("schema %s of database %s: %w", src.schema, src.database, migrations.ErrNotMigrated)
	}
	if src.cairnSchema, err = migrations.Version(ctx, tx); err != nil {
		return src, err
	}
	if hasRiver {
		q := fmt.Sprintf(riverVersionSQL, pgx.Identifier{src.schema, "river_migration"}.Sanitize())
		if riverLines {
			q += riverMainLineSQL
		}
		if err := tx.QueryRow(ctx, q).Scan(&src.riverSchema); err != nil {
			return src, fmt.Errorf("read River's migration version: %w", err)
		}
	}
	err = tx.QueryRow(ctx, vectorExtensionSQL).Scan(&src.vector, &src.vectorSchema)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return src, fmt.Errorf("look for the vector extension: %w", err)
	}
	if src.counts, err = countRows(ctx, tx, src.schema); err != nil {
		return src, err
	}
	return src, nil
}

// namePattern makes a pg_dump -n / --extension pattern that matches name exactly: double quotes
// turn off the pattern characters (* ? .) and keep the case.
func namePattern(name string) string {
	out := []byte{'"'}
	for i := 0; i < len(name); i++ {
		if name[i] == '"' {
			out = append(out, '"')
		}
		out = append(out, name[i])
	}
	return string(append(out, '"'))
}

// watchSize reports the size of a file pg_dump is writing until stop is called.
func watchSize(path string, bar *progress.Bar) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			if fi, err := os.Stat(path); err == nil {
				bar.Set(fi.Size())
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() {
		close(done)
		<-finished
		if fi, err := os.Stat(path); err == nil {
			bar.Set(fi.Size())
		}
	}
}

// syncDir makes the renames into dir durable; a failure only weakens that, so it is ignored.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}
