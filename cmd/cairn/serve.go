package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/mcp"
)

func serveCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "transport", Value: config.TransportStdio, EnvVars: []string{"CAIRN_TRANSPORT"}, Usage: "stdio, sse (served at /sse) or http (Streamable HTTP at /mcp)"},
		&cli.StringFlag{Name: "addr", Value: config.DefaultAddr, EnvVars: []string{"CAIRN_ADDR"}, Usage: "listen address of the sse and http transports"},
		&cli.StringFlag{Name: "auth-token-role", Value: config.DefaultAuthTokenRole, EnvVars: []string{"CAIRN_AUTH_TOKEN_ROLE"}, Usage: "role of the --auth-token token (its name is \"token\")"},
		&cli.StringFlag{Name: "auth-issuer", EnvVars: []string{"CAIRN_AUTH_ISSUER", "MCP_AUTH_ISSUER"}, Usage: "accept JWTs from this issuer `URL`, verified against its key set (JWKS)"},
		&cli.StringSliceFlag{Name: "auth-audience", EnvVars: []string{"CAIRN_AUTH_AUDIENCE", "MCP_AUTH_AUDIENCE"}, Usage: "aud values a JWT may carry (any one will do; default --public-url's /mcp and /sse)"},
		&cli.StringFlag{Name: "auth-jwks-url", EnvVars: []string{"CAIRN_AUTH_JWKS_URL", "MCP_AUTH_JWKS_URL"}, Usage: "the issuer's key set (default: jwks_uri of its discovery document, else <issuer>/.well-known/jwks.json)"},
		&cli.StringFlag{Name: "auth-role-claim", Value: config.DefaultAuthRoleClaim, EnvVars: []string{"CAIRN_AUTH_ROLE_CLAIM"}, Usage: "JWT claim holding the caller's role: a name, or a dotted path (realm_access.roles); a list gives its first entry"},
		&cli.StringFlag{Name: "auth-default-role", EnvVars: []string{"CAIRN_AUTH_DEFAULT_ROLE"}, Usage: "role of a JWT without the role claim (default: none, such tokens get 403)"},
		&cli.DurationFlag{Name: "auth-clock-skew", Value: config.DefaultAuthClockSkew, EnvVars: []string{"CAIRN_AUTH_CLOCK_SKEW"}, Usage: "tolerance on a JWT's exp, nbf and iat"},
		&cli.StringSliceFlag{Name: "auth-required-scope", EnvVars: []string{"CAIRN_AUTH_REQUIRED_SCOPE"}, Usage: "OAuth scope every JWT must carry (403 otherwise); repeat or comma-separate for several"},
		&cli.StringFlag{Name: "public-url", EnvVars: []string{"CAIRN_PUBLIC_URL"}, Usage: "`URL` clients reach cairn at, e.g. https://cairn.example.com (default: each request's Host); set it behind a proxy"},
		&cli.BoolFlag{Name: "audit-events", EnvVars: []string{"CAIRN_AUDIT_EVENTS"}, Usage: "also record every audited (writing) tool call as an event on the stream audit:<user>; the audit log line is written either way"},
		&cli.IntFlag{Name: "max-calls-per-caller", EnvVars: []string{"CAIRN_MAX_CALLS_PER_CALLER"}, Usage: "most tool calls one caller (a token's identity; the OS user over stdio) may have in flight (default half of --pool-max)"},
		&cli.IntFlag{Name: "max-sessions-per-caller", Value: mcp.DefaultMaxSessions, EnvVars: []string{"CAIRN_MAX_SESSIONS_PER_CALLER"}, Usage: "most SSE streams and Streamable HTTP requests one caller may have open"},
		&cli.DurationFlag{Name: "admission-wait", Value: mcp.DefaultAdmissionWait, EnvVars: []string{"CAIRN_ADMISSION_WAIT"}, Usage: "longest a call over its caller's limit waits for a slot before it is refused (a retryable tool error)"},
		noMigrateFlag, pprofFlag,
	}, tokenFlags, toolFlags, jobFlags, dbFlags)
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the MCP tools (stdio by default) and work background jobs",
		Description: `Examples:
   cairn serve
   cairn serve --transport http --addr 127.0.0.1:8080
   CAIRN_AUTH_TOKEN=$(cat token) cairn serve --transport sse --addr 0.0.0.0:8080`,
		Flags:  flags,
		Action: serve,
	}
}

// pprofFlag turns on Go's profiles, for an operator who wants to see where a process's time goes.
var pprofFlag = &cli.StringFlag{Name: "pprof-addr", EnvVars: []string{"CAIRN_PPROF_ADDR"},
	Usage: "serve Go's profiles (/debug/pprof/, for go tool pprof) at this `host:port`, behind the bearer token when one is set (default: off)"}

// tokenFlags are the static bearer tokens of the HTTP endpoints (serve's, and a worker's
// /metrics).
var tokenFlags = []cli.Flag{
	&cli.StringFlag{Name: "auth-token", EnvVars: []string{"CAIRN_AUTH_TOKEN"}, Usage: "bearer token the HTTP endpoints require (some authentication is needed to listen beyond loopback)"},
	&cli.StringFlag{Name: "auth-tokens-file", EnvVars: []string{"CAIRN_AUTH_TOKENS_FILE"}, Usage: "`FILE` of static tokens, one name:role:token per line (# comments)"},
	&cli.StringFlag{Name: "auth-tokens", EnvVars: []string{"CAIRN_AUTH_TOKENS"}, Usage: "static tokens as name:role:token entries, comma-separated (better in the environment than on the command line)"},
}

// toolFlags are what a caller may do through the tools, whoever serves them: `serve` and an
// in-process `call` apply the same (with the database's statement timeout, a dbFlag).
var toolFlags = []cli.Flag{
	&cli.BoolFlag{Name: "read-only", EnvVars: []string{"CAIRN_READ_ONLY"}, Usage: "refuse every write (execute, transaction, insert_vector, the domain tools that write)"},
	&cli.IntFlag{Name: "max-rows", Value: config.DefaultMaxRows, EnvVars: []string{"CAIRN_MAX_ROWS"}, Usage: "most rows a result returns; the rest is cut and marked truncated"},
	&cli.IntFlag{Name: "max-result-bytes", Value: config.DefaultMaxResultBytes, EnvVars: []string{"CAIRN_MAX_RESULT_BYTES"}, Usage: "most bytes of JSON a result's rows take; the rest is cut and marked truncated"},
	&cli.StringSliceFlag{Name: "toolsets", EnvVars: []string{"CAIRN_TOOLSETS"}, Usage: "tool groups to expose, comma-separated (available: " + strings.Join(config.Toolsets, ", ") + "; default all)"},
	&cli.StringFlag{Name: "permissions", EnvVars: []string{"CAIRN_PERMISSIONS_FILE"}, Usage: "YAML `FILE` of roles: the tools, operations (read, write, ddl), tables and functions each may use (default: everyone may do everything)"},
	&cli.StringFlag{Name: "role", EnvVars: []string{"CAIRN_ROLE"}, Usage: "`ROLE` of the permissions file for callers that bring none (stdio, cairn call; default the file's default_role)"},
}

// toolConfig reads the settings of the MCP server that do not depend on the transport (serve,
// call): database, toolFlags, --no-migrate.
func toolConfig(c *cli.Context) *config.Config {
	cfg := configFrom(c)
	cfg.ReadOnly = c.Bool("read-only")
	cfg.MaxRows = c.Int("max-rows")
	cfg.MaxResultBytes = c.Int("max-result-bytes")
	cfg.PermissionsFile = c.String("permissions")
	cfg.Role = c.String("role")
	cfg.NoMigrate = c.Bool("no-migrate")
	cfg.Toolsets = splitList(c.StringSlice("toolsets"))
	return cfg
}

// splitList splits comma-separated entries of a list flag and drops empty ones.
func splitList(vals []string) []string {
	var out []string
	for _, v := range vals {
		for _, e := range strings.Split(v, ",") {
			if e = strings.TrimSpace(e); e != "" {
				out = append(out, e)
			}
		}
	}
	return out
}

func serve(c *cli.Context) error {
	cfg := toolConfig(c)
	cfg.Transport = c.String("transport")
	cfg.Addr = c.String("addr")
	cfg.AuthToken = c.String("auth-token")
	cfg.AuthTokenRole = c.String("auth-token-role")
	cfg.AuthTokensFile = c.String("auth-tokens-file")
	cfg.AuthTokens = c.String("auth-tokens")
	cfg.AuthIssuer = c.String("auth-issuer")
	cfg.AuthAudience = splitList(c.StringSlice("auth-audience"))
	cfg.AuthJWKSURL = c.String("auth-jwks-url")
	cfg.AuthRoleClaim = c.String("auth-role-claim")
	cfg.AuthDefaultRole = c.String("auth-default-role")
	cfg.AuthClockSkew = c.Duration("auth-clock-skew")
	cfg.AuthRequiredScopes = splitList(c.StringSlice("auth-required-scope"))
	cfg.PublicURL = c.String("public-url")
	cfg.AuditEvents = c.Bool("audit-events")
	if err := cfg.Normalize(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	ctx := c.Context
	log := slog.Default()
	perms, err := mcp.LoadPermissions(cfg)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if perms != nil {
		log.Info("permissions", "file", cfg.PermissionsFile, "roles", perms.Roles(), "role", cfg.Role, "default_role", perms.DefaultRole())
	}
	mo := mcp.Options{Config: cfg, Logger: log, Version: cairnVersion(), Permissions: perms, PoolWaits: db.NewPoolWaits(), Pending: true,
		Admission: mcp.AdmissionOptions{MaxCalls: c.Int("max-calls-per-caller"), MaxSessions: c.Int("max-sessions-per-caller"), Wait: c.Duration("admission-wait")}}
	if mo.Admission.MaxCalls < 0 || mo.Admission.MaxSessions < 0 || mo.Admission.Wait < 0 {
		return cli.Exit("--max-calls-per-caller, --max-sessions-per-caller and --admission-wait must not be negative", 2)
	}
	cfg.PoolTracer = mo.PoolWaits
	if cfg.Transport != config.TransportStdio {
		if mo.Auth, err = mcp.NewVerifier(cfg, perms, log); err != nil {
			return err
		}
	}
	opts, err := backendOptions(c, cfg)
	if err != nil {
		return err
	}

	// Listen before connecting so that a taken port fails at once.
	var ln net.Listener
	if cfg.Transport != config.TransportStdio {
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return cli.Exit(fmt.Sprintf("listen on %s: %v", cfg.Addr, err), 1)
		}
		defer ln.Close()
	}
	if err := serveProfiles(c, cfg); err != nil {
		return err
	}
	bg, err := backend.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer bg.Close()
	mo.Pool, mo.System = bg.Pool, bg.System
	mo.About = mcp.About{Version: cairnVersion(), Data: bg.Data}
	// Building the tools' schemas allocates a few MB that are garbage at once; collecting them
	// while they are made would only delay the first answer (by a third, docs/BENCHMARKS.md).
	gc := debug.SetGCPercent(400)
	srv := mcp.New(mo)
	debug.SetGCPercent(gc)
	defer srv.Close() // deferred after bg.Close, so it runs first: the subscription listener lets go before the pool closes

	// Deferred after bg.Close, so it runs first: jobs in flight finish while the pools are open.
	defer bg.StopJobs()
	if ln == nil {
		log.Info("serving MCP over stdio", "version", cairnVersion(), "read_only", cfg.ReadOnly)
		if term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Fprint(os.Stderr, stdioHint)
		}
	}
	return srv.Serve(ctx, ln, func(ctx context.Context) error {
		err := bg.Start(ctx, c.Context)
		about := mo.About
		about.Embedder = bg.Knowledge.Choice
		if err = srv.Start(ctx, bg.Knowledge.Store, about, err); err == nil && ln != nil && c.String("log-format") != "json" {
			// For a person starting it over HTTP: where it serves and how to connect, as GET /
			// says too (JSON logs go to a collector, not a person).
			fmt.Fprint(os.Stderr, "\n"+about.Text("http://"+ln.Addr().String())+"\n")
		}
		return err
	})
}

// stdioHint is what serve says when a person, not an MCP client, started it over stdio.
const stdioHint = `
cairn serve speaks MCP over stdin and stdout and waits for an MCP client, one JSON-RPC message
per line. MCP clients start it themselves, e.g.:
    claude mcp add cairn -- cairn serve
To try it by hand:
    cairn call --list                        the tools
    cairn call query sql='SELECT 1'          one call
    cairn serve --transport http             then open http://127.0.0.1:8080/
Ctrl-D or Ctrl-C stops it.
`
