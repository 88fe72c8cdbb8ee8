package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/client"
	"github.com/cairn-mcp/cairn/internal/cliargs"
	"github.com/cairn-mcp/cairn/internal/logging"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/mcp"
)

func callCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "json", Usage: "the arguments as one JSON `OBJECT` (- reads it from stdin), instead of key=value pairs"},
		&cli.BoolFlag{Name: "list", Usage: "list the tools, one line each, and exit"},
		&cli.StringFlag{Name: "url", Usage: "call the running cairn at `URL` instead: its Streamable HTTP endpoint (…/mcp, or the base URL) or its SSE endpoint (…/sse)"},
		&cli.StringFlag{Name: "auth-token", EnvVars: []string{"CAIRN_AUTH_TOKEN"}, Usage: "bearer `TOKEN` the server at --url requires"},
		noMigrateFlag,
	}, toolFlags, callEmbedFlags(), dbFlags)
	return &cli.Command{
		Name:      "call",
		Usage:     "run one MCP tool and print its result as JSON",
		ArgsUsage: "TOOL [key=value ...]",
		Description: `Runs the tool in-process on the configured database (as ` + "`cairn serve`" + ` would, through the same MCP
server, so arguments are checked and results encoded exactly as a client sees them), or on the
running cairn at --url. In-process, the call is held to what serve applies to a stdio caller:
--permissions and --role (CAIRN_PERMISSIONS_FILE, CAIRN_ROLE), --read-only, the row and byte
caps and the statement timeout; at --url the server applies its own. Flags may come before or
after the tool name.

Arguments are key=value pairs, each value read as JSON when it is valid JSON (numbers, true,
false, null, arrays, objects, "quoted strings") and as a plain string otherwise; or one JSON
object with --json, not both.

Prints the tool's structured result as indented JSON on stdout (its text when it has none).

Exit codes: 0 the tool succeeded; 1 the tool reported an error (its message on stderr) or cairn
could not be reached; 2 usage: bad arguments, or no such tool (the tools are listed).

Examples:
   cairn call --list
   cairn call query sql="SELECT 1 AS x"
   cairn call query --json '{"sql": "SELECT * FROM agents WHERE template = $1", "params": ["coder"]}'
   cairn call execute sql="CREATE TABLE notes (id serial PRIMARY KEY, body text)"
   cairn call list_tables schema=public exact=true
   cairn call knowledge_search query="numpy import error" limit=5
   echo '{"workflow_id": "wf-1"}' | cairn call checkpoint_load --json -
   cairn call server_info --url http://127.0.0.1:8080 --auth-token "$(cat token)"`,
		Flags:  flags,
		Action: call,
	}
}

// callEmbedFlags are the embedder flags that matter to an in-process call (search embeds the
// query; writes only queue embed jobs, which a server or worker works).
func callEmbedFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range embedFlags {
		switch f.Names()[0] {
		case "embed-sweep", "embed-max-backoff":
			continue
		}
		out = append(out, f)
	}
	return out
}

func call(c *cli.Context) error {
	pos, help, err := cliargs.Positional(c)
	if help || err != nil {
		return err
	}
	list := c.Bool("list")
	var tool string
	var pairs []string
	switch {
	case list && len(pos) > 0:
		return cli.Exit("--list takes no tool or arguments (see `cairn call --help`)", 2)
	case !list && len(pos) == 0:
		return cli.Exit("name the tool to call: cairn call TOOL [key=value ...] (`cairn call --list` lists them)", 2)
	case !list:
		tool, pairs = pos[0], pos[1:]
	}
	if !c.IsSet("log-level") {
		// The start-up messages of a one-shot command (migrations, the embedder chosen) would
		// bury its output; an explicit --log-level (or CAIRN_LOG_LEVEL) still has them.
		slog.SetDefault(slog.New(logging.MinLevel{Handler: slog.Default().Handler(), Min: slog.LevelWarn}))
	}
	var args json.RawMessage
	if !list {
		if args, err = client.Arguments(c.String("json"), c.IsSet("json"), pairs, os.Stdin); err != nil {
			return cli.Exit(fmt.Sprintf("%v (see `cairn call --help`)", err), 2)
		}
	}

	ctx := c.Context
	var cs *client.Session
	if u := c.String("url"); u != "" {
		endpoint, sse, err := client.Endpoint(u)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		if cs, err = client.Remote(ctx, endpoint, sse, c.String("auth-token"), cairnVersion()); err != nil {
			return cli.Exit(err.Error(), 1)
		}
	} else if cs, err = inProcessSession(c); err != nil {
		return err
	}
	defer cs.Close()

	tools, err := client.AllTools(ctx, cs.ClientSession)
	if err != nil {
		return cli.Exit(fmt.Sprintf("list the tools: %v", err), 1)
	}
	if list {
		return client.WriteTools(c.App.Writer, tools)
	}
	if !slices.ContainsFunc(tools, func(t *sdk.Tool) bool { return t.Name == tool }) {
		// The list holds what this caller may call; for a tool cairn has, the server says why
		// this caller may not (its role, read-only mode).
		if _, known := mcp.KnownTools()[tool]; !known {
			return cli.Exit(client.UnknownTool(tool, tools), 2)
		}
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", tool, err), 1)
	}
	out := client.Output(res)
	if res.IsError {
		return cli.Exit(strings.TrimSpace(string(out)), 1)
	}
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	_, err = c.App.Writer.Write(out)
	return err
}

// inProcessSession connects to cairn's MCP server built in this process on the configured
// database, held to what serve applies to a stdio caller.
func inProcessSession(c *cli.Context) (*client.Session, error) {
	cfg := toolConfig(c)
	if err := cfg.Normalize(); err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	perms, err := mcp.LoadPermissions(cfg)
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	ko, err := knowledgeOptions(c, jobs.Options{Logger: slog.Default()})
	if err != nil {
		return nil, err
	}
	return client.InProcess(c.Context, client.InProcessOptions{Config: cfg, DataDir: c.String("data-dir"), Permissions: perms,
		Knowledge: ko, Version: cairnVersion()})
}
