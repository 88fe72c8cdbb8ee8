package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/backup"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/migrations"
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

--into-db NAME restores into another database of the same server (the configured one, or the
embedded cluster), and --create makes the target database first when it does not exist.

Examples:
   cairn restore cairn-20260102T030405Z.dump --into postgres://cairn@db2/cairn
   cairn restore /backups/cairn.dump --clean            # over the configured database
   cairn restore /backups/cairn.dump --into-db cairn_copy --create   # a new database beside it`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "into", Usage: "connection string or URL of the target database (default: the configured database); its password from the string, PGPASSWORD or ~/.pgpass"},
			&cli.StringFlag{Name: "into-db", Usage: "restore into the database `NAME` of the same server as the target (the configured one, the embedded cluster, or --into's)"},
			&cli.BoolFlag{Name: "create", Usage: "create the target database first if it does not exist (as the connecting role; it needs CREATEDB)"},
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
	if err := m.CheckRestorable(); err != nil {
		return err
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
	if _, err := backend.Migrate(c.Context, pool, slog.Default()); err != nil {
		return fmt.Errorf("restored, but migrating failed: %w", err)
	}
	v, err := migrations.Version(c.Context, pool)
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
	if err := cfg.Normalize(); err != nil {
		return nil, backup.Conn{}, cli.Exit(err.Error(), 2)
	}
	name := c.String("into-db")
	if c.Bool("create") {
		if err := createDatabase(c, cfg, name); err != nil {
			return nil, backup.Conn{}, err
		}
	}
	return openWithClientConn(c, cfg, name)
}

// createDatabase creates the target database (name, else the one cfg names) unless it exists,
// from the server's maintenance database "postgres".
func createDatabase(c *cli.Context, cfg *config.Config, name string) error {
	admin, err := backend.Connect(c.Context, cfg, c.String("data-dir"), "postgres")
	if err != nil {
		return err
	}
	defer admin.Close()
	if name == "" {
		pc, err := cfg.PoolConfig()
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		name = pc.ConnConfig.Database
	}
	created, err := backup.CreateDatabase(c.Context, admin, name)
	if created {
		fmt.Fprintf(c.App.ErrWriter, "restore: created database %s\n", name)
	}
	return err
}
