package main

import (
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/backup"
	"github.com/cairn-mcp/cairn/internal/cliargs"
	"github.com/cairn-mcp/cairn/internal/config"
)

// pgBinDirFlag says where pg_dump and pg_restore are; CAIRN_PG_BINDIR is the variable the
// embedded cluster reads for its server binaries, which sit in the same directory.
var pgBinDirFlag = &cli.StringFlag{Name: "pg-bindir", EnvVars: []string{"CAIRN_PG_BINDIR"},
	Usage: "directory holding pg_dump and pg_restore (default: PATH, then the newest /usr/lib/postgresql/*/bin)"}

func backupCommand() *cli.Command {
	return &cli.Command{
		Name:      "backup",
		Usage:     "dump cairn's data (its tables, River's and the vector extension) to a pg_dump archive with a manifest",
		ArgsUsage: " ",
		Description: `Writes a pg_dump custom-format archive of the schema cairn's and River's tables live in
(the current schema, normally public) with the vector extension, so that it restores into an
empty database, and FILE.manifest.json beside it: cairn's, River's and PostgreSQL's versions, the
row count of every table (taken in the snapshot pg_dump dumps) and the archive's SHA-256. Other
schemas of a shared database are not included.

pg_dump must be at least the server's major version (and 14 or newer when the vector extension
is installed). Progress goes to stderr; the summary (or --json, the manifest) to stdout.

Examples:
   cairn backup                                  # cairn-20260102T030405Z.dump in this directory
   cairn backup --out /backups/cairn.dump --verify
   cairn backup verify /backups/cairn.dump       # check an archive: checksum, then a test restore`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Usage: "archive to write (default: cairn-<UTC time>.dump in the current directory)"},
			&cli.BoolFlag{Name: "force", Usage: "replace an existing archive"},
			&cli.BoolFlag{Name: "verify", Usage: "before keeping the archive, restore it into a scratch database on the same server (needs CREATEDB) and compare every table's row count with the manifest"},
			&cli.BoolFlag{Name: "json", Usage: "print the manifest as JSON instead of a summary"},
			pgBinDirFlag,
		}, dbFlags),
		Action:      runBackup,
		Subcommands: []*cli.Command{backupVerifyCommand()},
	}
}

func runBackup(c *cli.Context) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("unexpected argument %q: the archive is named with --out (see `cairn backup --help`)", c.Args().First()), 2)
	}
	out := c.String("out")
	if out == "" {
		out = "cairn-" + time.Now().UTC().Format("20060102T150405Z") + ".dump"
	}
	pool, conn, err := openBackupDB(c)
	if err != nil {
		return err
	}
	defer pool.Close()
	m, err := backup.Create(c.Context, pool, conn, backup.Options{
		Out: out, Force: c.Bool("force"), BinDir: c.String("pg-bindir"), Verify: c.Bool("verify"),
		CairnVersion: cairnVersion(), Progress: c.App.ErrWriter, Log: slog.Default(),
	})
	if err != nil {
		return err
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, m)
	}
	m.WriteSummary(c.App.Writer, out, c.Bool("verify"))
	return nil
}

func backupVerifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "check an archive against its manifest: the checksum, then a restore into a scratch database",
		ArgsUsage: "FILE",
		Description: `Checks FILE's SHA-256 against FILE.manifest.json, restores it into a scratch database
(cairn_verify_<random>) on the configured server, compares every table's row count with the
manifest and drops the scratch database. Exit code 1 when anything differs.

Example:
   cairn backup verify /backups/cairn.dump`,
		Flags: slices.Concat([]cli.Flag{pgBinDirFlag}, dbFlags),
		Action: func(c *cli.Context) error {
			file, err := archiveArg(c)
			if err != nil || file == "" {
				return err
			}
			m, err := backup.ReadManifest(file)
			if err != nil {
				return err
			}
			pool, conn, err := openBackupDB(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := backup.Verify(c.Context, pool, conn, file, m, backup.VerifyOptions{BinDir: c.String("pg-bindir"), Progress: c.App.ErrWriter}); err != nil {
				return fmt.Errorf("%s failed verification: %w", file, err)
			}
			fmt.Fprintf(c.App.Writer, "%s: ok (checksum, and %d tables with %d rows restored as the manifest says)\n", file, len(m.Tables), m.Rows())
			return nil
		},
	}
}

// archiveArg returns the one archive a command takes, with its flags allowed after it as people
// type them (`cairn restore x.dump --clean`); "" when it showed the help instead.
func archiveArg(c *cli.Context) (string, error) {
	pos, help, err := cliargs.Positional(c)
	if help || err != nil {
		return "", err
	}
	if len(pos) != 1 {
		name := cliargs.FullName(c)
		return "", cli.Exit(fmt.Sprintf("%s takes one archive, got %d arguments (see `%s --help`)", name, len(pos), name), 2)
	}
	return pos[0], nil
}

// openBackupDB opens the configured database (or the embedded cluster) and the connection
// string pg_dump and pg_restore use for it.
func openBackupDB(c *cli.Context) (*pgxpool.Pool, backup.Conn, error) {
	cfg := configFrom(c)
	if err := cfg.Normalize(); err != nil {
		return nil, backup.Conn{}, cli.Exit(err.Error(), 2)
	}
	return openWithClientConn(c, cfg, "")
}

// openWithClientConn opens the database cfg names (dbname of its server, unless "") and the
// connection string for the client programs: pool and programs must reach the same database.
func openWithClientConn(c *cli.Context, cfg *config.Config, dbname string) (*pgxpool.Pool, backup.Conn, error) {
	// Connect resolves cfg.DatabaseURL to the embedded cluster's if need be.
	pool, err := backend.Connect(c.Context, cfg, c.String("data-dir"), dbname)
	if err != nil {
		return nil, backup.Conn{}, err
	}
	conn, err := backup.NewConn(cfg.DatabaseURL, &pool.Config().ConnConfig.Config)
	if err != nil {
		pool.Close()
		return nil, backup.Conn{}, cli.Exit(err.Error(), 2)
	}
	return pool, conn, nil
}
