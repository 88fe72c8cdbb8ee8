// Command cairn is the workflow-state service for AI agents: an MCP server over PostgreSQL, and
// the operator's CLI around it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/logging"
	"github.com/cairn-mcp/cairn/internal/pgcluster"
	"github.com/cairn-mcp/cairn/migrations"
	"github.com/urfave/cli/v2"
)

// version is set at build time with -ldflags "-X main.version=…"; otherwise it comes from the
// module's build information.
var version = ""

func cairnVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	app := newApp()
	if err := app.RunContext(ctx, os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := ec.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "cairn:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "cairn:", err)
		os.Exit(1)
	}
}

func newApp() *cli.App {
	return &cli.App{
		Name:  "cairn",
		Usage: "workflow state, agent metrics and a knowledge graph for AI agents, in PostgreSQL, over MCP",
		Description: `cairn serves MCP tools over stdio, SSE and Streamable HTTP. With no database configured
(no DATABASE_URL, no PG* variables) it runs a private PostgreSQL cluster of its own.

Examples:
   cairn serve                                   # stdio, for Claude Desktop / Claude Code
   cairn serve --transport http --addr 127.0.0.1:8080
   cairn worker                                  # background jobs only, no MCP
   DATABASE_URL=postgres://cairn@db/cairn cairn migrate
   cairn status                                  # is everything healthy?
   cairn call query sql="SELECT count(*) FROM workflows"
   cairn backup --verify && cairn restore cairn-….dump --into postgres://…/new
   cairn db status`,
		Version:              cairnVersion(),
		EnableBashCompletion: true,
		Flags:                logFlags,
		Before: func(c *cli.Context) error {
			return setupLogging(c)
		},
		Commands:     commands(),
		OnUsageError: usageError,
	}
}

func commands() []*cli.Command {
	cmds := []*cli.Command{serveCommand(), workerCommand(), migrateCommand(), pruneCommand(), rebuildCommand(), dbCommand(), statusCommand(), callCommand(), askCommand(), backupCommand(), restoreCommand(), reindexCommand(), completionCommand(), healthcheckCommand(), versionCommand()}
	var all func([]*cli.Command)
	all = func(cs []*cli.Command) {
		for _, c := range cs {
			c.OnUsageError = usageError
			if c.Action != nil {
				c.Action = exitCodes(c.Action)
			}
			all(c.Subcommands)
		}
	}
	all(cmds)
	return cmds
}

// usageError reports a bad flag on stderr with exit code 2. urfave/cli would print the help to
// stdout, which over the stdio transport is the client's protocol stream.
func usageError(c *cli.Context, err error, _ bool) error {
	name := "cairn"
	if c.Command != nil && c.Command.Name != "" {
		name = "cairn " + c.Command.FullName()
	}
	return cli.Exit(fmt.Sprintf("%v (see `%s --help`)", err, name), 2)
}

// exitCodes gives the errors of cairn's packages the CLI's exit codes: 2 for a setting that
// cannot work, 1 with the message alone for missing PostgreSQL binaries (what to install).
func exitCodes(action cli.ActionFunc) cli.ActionFunc {
	return func(c *cli.Context) error {
		err := action(c)
		var ue *config.UsageError
		var mb *pgcluster.MissingBinariesError
		switch {
		case errors.As(err, &ue):
			return cli.Exit(err.Error(), 2)
		case errors.As(err, &mb):
			return cli.Exit(err.Error(), 1)
		}
		return err
	}
}

var logFlags = []cli.Flag{
	&cli.StringFlag{Name: "log-level", Value: "info", EnvVars: []string{"CAIRN_LOG_LEVEL"}, Usage: "debug, info, warn or error"},
	&cli.StringFlag{Name: "log-format", Value: "text", EnvVars: []string{"CAIRN_LOG_FORMAT"}, Usage: "text or json (logs go to stderr; stdout belongs to the stdio transport)"},
}

func setupLogging(c *cli.Context) error {
	log, err := logging.New(os.Stderr, c.String("log-level"), c.String("log-format"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	slog.SetDefault(log)
	return nil
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print cairn's version and the schema version it migrates to",
		Action: func(c *cli.Context) error {
			fmt.Fprintf(c.App.Writer, "cairn %s (schema %d)\n", cairnVersion(), migrations.Latest())
			return nil
		},
	}
}

// writeJSON prints v as indented JSON, what every --json prints.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
