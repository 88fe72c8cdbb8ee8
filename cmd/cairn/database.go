package main

import (
	"fmt"
	"log/slog"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/pgcluster"
	"github.com/cairn-mcp/cairn/migrations"
)

// dbFlags are the connection settings every command that talks to the database takes.
var dbFlags = []cli.Flag{
	&cli.StringFlag{Name: "database-url", EnvVars: []string{"DATABASE_URL"}, Usage: "PostgreSQL connection string or URL; default: libpq's PG* variables, else the embedded cluster"},
	&cli.StringFlag{Name: "password-file", EnvVars: []string{"PGPASSWORD_FILE"}, Usage: "file holding the database password (alone, or as PGPASSWORD=...)"},
	&cli.StringFlag{Name: "data-dir", EnvVars: []string{"CAIRN_DATA_DIR"}, Usage: "data directory of the embedded cluster (default ~/.local/share/cairn/postgres; /var/lib/cairn/postgres as root)"},
	&cli.IntFlag{Name: "pool-min", Value: config.DefaultPoolMin, EnvVars: []string{"CAIRN_POOL_MIN"}, Usage: "connections the pool keeps open"},
	&cli.IntFlag{Name: "pool-max", Value: config.DefaultPoolMax, EnvVars: []string{"CAIRN_POOL_MAX"}, Usage: "most connections the pool of tool calls and domain work opens"},
	&cli.IntFlag{Name: "system-pool-max", Value: config.DefaultSystemPoolMax, EnvVars: []string{"CAIRN_SYSTEM_POOL_MAX"}, Usage: "most connections of the pool tool calls cannot take: background jobs' River, migrations, /readyz, subscriptions"},
	&cli.DurationFlag{Name: "statement-timeout", Value: config.DefaultStatementTimeout, EnvVars: []string{"CAIRN_STATEMENT_TIMEOUT"}, Usage: "longest a statement may run (e.g. 30s, 2m)"},
}

// connect resolves where the database is (configured, or the embedded cluster, started if need
// be) and opens the pool.
func connect(c *cli.Context, cfg *config.Config) (*pgxpool.Pool, error) {
	return backend.Connect(c.Context, cfg, c.String("data-dir"), "")
}

// configFrom reads the settings shared by the database commands.
func configFrom(c *cli.Context) *config.Config {
	return &config.Config{
		DatabaseURL:      c.String("database-url"),
		PasswordFile:     c.String("password-file"),
		PoolMin:          c.Int("pool-min"),
		PoolMax:          c.Int("pool-max"),
		SystemPoolMax:    c.Int("system-pool-max"),
		StatementTimeout: c.Duration("statement-timeout"),
	}
}

// noMigrateFlag is the --no-migrate of the commands that migrate at start (serve, worker).
var noMigrateFlag = &cli.BoolFlag{Name: "no-migrate", EnvVars: []string{"CAIRN_NO_MIGRATE"}, Usage: "do not apply pending migrations at start"}

// openDB connects with the database flags alone: what the one-shot commands (migrate, prune,
// rebuild-projections) need.
func openDB(c *cli.Context) (*pgxpool.Pool, error) {
	cfg := configFrom(c)
	if err := cfg.Normalize(); err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	return connect(c, cfg)
}

func migrateCommand() *cli.Command {
	return &cli.Command{
		Name:  "migrate",
		Usage: "apply pending schema migrations, cairn's and River's (safe to run while other cairn processes run)",
		Flags: dbFlags,
		Action: func(c *cli.Context) error {
			pool, err := openDB(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			applied, err := backend.Migrate(c.Context, pool, slog.Default())
			if err != nil {
				return err
			}
			v, err := migrations.Version(c.Context, pool)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "applied %d migration(s); schema is at version %d\n", len(applied), v)
			return nil
		},
	}
}

func dbCommand() *cli.Command {
	dataDir := &cli.StringFlag{Name: "data-dir", EnvVars: []string{"CAIRN_DATA_DIR"}, Usage: "data directory of the embedded cluster"}
	cluster := func(c *cli.Context) (*pgcluster.Cluster, error) {
		cl, err := pgcluster.New(pgcluster.Options{DataDir: c.String("data-dir"), Logger: slog.Default()})
		if err != nil {
			return nil, cli.Exit(err.Error(), 1)
		}
		return cl, nil
	}
	return &cli.Command{
		Name:  "db",
		Usage: "manage the embedded PostgreSQL cluster cairn uses when no database is configured",
		Subcommands: []*cli.Command{
			{
				Name: "start", Usage: "create (first time) and start the embedded cluster", Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					cl, err := cluster(c)
					if err != nil {
						return err
					}
					if err := cl.Start(c.Context); err != nil {
						return err
					}
					fmt.Fprintf(c.App.Writer, "running; connect with: %s\n", cl.ConnString())
					return nil
				},
			},
			{
				Name: "stop", Usage: "stop the embedded cluster", Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					cl, err := cluster(c)
					if err != nil {
						return err
					}
					return cl.Stop(c.Context)
				},
			},
			{
				Name: "status", Usage: "show whether the embedded cluster exists and runs (exit code 3 when stopped)", Flags: []cli.Flag{dataDir},
				Action: func(c *cli.Context) error {
					cl, err := cluster(c)
					if err != nil {
						return err
					}
					st, err := cl.Status(c.Context)
					if err != nil {
						return err
					}
					st.WriteText(c.App.Writer)
					if !st.Running {
						return cli.Exit("", 3)
					}
					return nil
				},
			},
		},
	}
}
