package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/backup"
	"github.com/cairn-mcp/cairn/internal/db"
	cairnsql "github.com/cairn-mcp/cairn/sql"
)

func restoreCommand() *cli.Command {
	return &cli.Command{
		Name:      "restore",
		Usage:     "restore an archive of `cairn backup` into an empty database (or, with --clean, over one), then migrate",
		ArgsUsage: "FILE",
		Description: `Checks FILE's SHA-256 against FILE.manifest.json, restores it with pg_restore in one
transaction into the database of --into (else the configured one), checks that every table holds
exactly the rows the manifest lists, then applies this cairn's migrations (cairn's and River's).

A target whose schema holds anything is refused unless --clean: that drops every table, view,
sequence, function and type in the schema (with CASCADE, so objects elsewhere that depend on them
go too) but keeps the schema, its grants and the vector extension, then restores.

Examples:
   cairn restore cairn-20260102T030405Z.dump --into postgres://cairn@db2/cairn
   cairn restore /backups/cairn.dump --clean     # over the configured database`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "into", Usage: "connection string or URL of the target database (default: the configured database); its password from the string, PGPASSWORD or ~/.pgpass"},
			&cli.BoolFlag{Name: "clean", Usage: "drop what the target schema holds before restoring"},
			pgBinDirFlag,
		}, dbFlags),
		Action: runRestore,
	}
}

func runRestore(c *cli.Context) error {
	file, err := archiveArg(c)
	if err != nil || file == "" {
		return err
	}
	m, err := backup.ReadManifest(file)
	if err != nil {
		return err
	}
	if latest := cairnsql.Latest(); m.CairnSchema > latest {
		return fmt.Errorf("the archive's cairn schema is at migration %d but this cairn knows only up to %d: restore it with a cairn at least as new as %s, which made it", m.CairnSchema, latest, m.CairnVersion)
	}
	pool, conn, err := openRestoreTarget(c)
	if err != nil {
		return err
	}
	defer pool.Close()
	step := func(msg string) { fmt.Fprintln(c.App.ErrWriter, "restore: "+msg) }
	step(fmt.Sprintf("%s (cairn %s, schema %s, %d tables, %d rows) into %s", file, m.CairnVersion, m.Schema, len(m.Tables), m.Rows(), db.Target(pool.Config().ConnConfig.Config)))
	err = backup.Restore(c.Context, pool, conn, file, m, backup.RestoreOptions{Clean: c.Bool("clean"), BinDir: c.String("pg-bindir"), Step: step})
	if err != nil {
		return err
	}
	step("migrating")
	if _, err := migrateAll(c.Context, pool, slog.Default()); err != nil {
		return fmt.Errorf("restored, but migrating failed: %w", err)
	}
	v, err := cairnsql.Version(c.Context, pool)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.App.Writer, "restored %s into %s: %d tables, %d rows; schema at version %d (the archive's was %d)\n",
		file, conn.Database(), len(m.Tables), m.Rows(), v, m.CairnSchema)
	return nil
}

// openRestoreTarget opens --into, or the configured database. --password-file is left out of
// --into: it belongs to the configured database, not necessarily to the target.
func openRestoreTarget(c *cli.Context) (*pgxpool.Pool, backup.Conn, error) {
	cfg := configFrom(c)
	if into := c.String("into"); into != "" {
		cfg.DatabaseURL, cfg.PasswordFile = into, ""
	}
	return openWithClientConn(c, cfg)
}
