package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
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
	for _, ts := range c.StringSlice("toolsets") {
		for _, t := range strings.Split(ts, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Toolsets = append(cfg.Toolsets, t)
			}
		}
	}
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

// serverSetup is what serve adds to the MCP server beyond the tools' configuration: who may call
// and what each caller may do (none of it for stdio and in-process calls without a permissions
// file), the limits per caller, the pools' metrics, and what GET / tells a person.
type serverSetup struct {
	perms     *permissions.Set
	auth      *auth.Verifier
	admission mcp.AdmissionOptions
	poolWaits *db.PoolWaits
	about     mcp.About
}

// newServer builds cairn's MCP server on pool (tool calls) and system (its own work, see
// background), what serve serves and call calls. It answers initialize and the lists at once;
// calls wait for startServer.
func newServer(pool, system *pgxpool.Pool, cfg *config.Config, a serverSetup) *mcp.Server {
	return mcp.New(mcp.Options{Config: cfg, Pool: pool, System: system, Logger: slog.Default(), Version: cairnVersion(),
		Permissions: a.perms, Auth: a.auth, Admission: a.admission, PoolWaits: a.poolWaits, About: a.about, Pending: true})
}

// startServer gives srv what needs the database, once it answers (background.start), and lets
// its calls through; with err set (the start failed) the calls fail with it.
func startServer(ctx context.Context, srv *mcp.Server, pool *pgxpool.Pool, cfg *config.Config, kg *knowledge.Store, about mcp.About, err error) error {
	var run *sqlexec.Runner
	if err == nil {
		run, err = sqlexec.New(ctx, pool, sqlexec.Options{MaxRows: cfg.MaxRows, MaxResultBytes: cfg.MaxResultBytes, ReadOnly: cfg.ReadOnly, Logger: slog.Default()})
	}
	srv.Started(mcp.Started{Runner: run, Knowledge: kg, About: about}, err)
	return err
}

// loadPermissions loads the permissions file the configuration names (nil without one) and
// checks that --role is one of its roles.
func loadPermissions(cfg *config.Config) (*permissions.Set, error) {
	if cfg.PermissionsFile == "" {
		return nil, nil
	}
	set, err := permissions.Load(cfg.PermissionsFile, mcp.KnownTools())
	if err != nil {
		return nil, err
	}
	if cfg.Role != "" && !set.HasRole(cfg.Role) {
		return nil, fmt.Errorf("--role %q is not a role of the permissions file %s (roles: %s)", cfg.Role, cfg.PermissionsFile, strings.Join(set.Roles(), ", "))
	}
	return set, nil
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
	// A bad permissions file stops cairn before it connects, with every problem listed.
	perms, err := loadPermissions(cfg)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if perms != nil {
		slog.Info("permissions", "file", cfg.PermissionsFile, "roles", perms.Roles(), "role", cfg.Role, "default_role", perms.DefaultRole())
	}
	acc := serverSetup{perms: perms, admission: mcp.AdmissionOptions{MaxCalls: c.Int("max-calls-per-caller"),
		MaxSessions: c.Int("max-sessions-per-caller"), Wait: c.Duration("admission-wait")}}
	if acc.admission.MaxCalls < 0 || acc.admission.MaxSessions < 0 || acc.admission.Wait < 0 {
		return cli.Exit("--max-calls-per-caller, --max-sessions-per-caller and --admission-wait must not be negative", 2)
	}
	acc.poolWaits = db.NewPoolWaits()
	cfg.PoolTracer = acc.poolWaits
	if cfg.Transport != config.TransportStdio {
		// Check the authentication settings (read the token file) now, not at the first request.
		ao, err := auth.OptionsFromConfig(cfg, slog.Default())
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		v, err := auth.New(ao)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		slog.Info("authentication of the HTTP transports", "modes", v.Describe())
		acc.auth = v
		// A token whose role the permissions file lacks works for nothing: say so now.
		for _, t := range ao.Tokens {
			if perms != nil && !perms.HasRole(t.Role) {
				slog.Warn("a token's role is not in the permissions file: its every call will be refused", "token", t.Name, "role", t.Role, "roles", perms.Roles())
			}
		}
		if perms != nil && ao.DefaultRole != "" && !perms.HasRole(ao.DefaultRole) {
			slog.Warn("--auth-default-role is not in the permissions file: JWTs without a role claim will be refused", "role", ao.DefaultRole, "roles", perms.Roles())
		}
	}
	jobOpts, err := jobOptions(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	log := slog.Default()

	// Listen before connecting so that a taken port fails at once.
	var ln net.Listener
	if cfg.Transport != config.TransportStdio {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return cli.Exit(fmt.Sprintf("listen on %s: %v", cfg.Addr, err), 1)
		}
		defer ln.Close()
	}

	if err := serveProfiles(ctx, c, cfg, log); err != nil {
		return err
	}
	bg, err := openPools(c, cfg)
	if err != nil {
		return err
	}
	defer bg.close()
	acc.about = mcp.About{Version: cairnVersion(), Data: bg.data}
	// Building the tools' schemas allocates a few MB that are garbage at once; collecting them
	// while they are made would only delay the first answer (by a third, docs/BENCHMARKS.md).
	gc := debug.SetGCPercent(400)
	srv := newServer(bg.pool, bg.system, cfg, acc)
	debug.SetGCPercent(gc)
	defer srv.Close() // deferred after bg.close, so it runs first: the subscription listener lets go before the pool closes

	// The transport is served while the database is connected to, checked and migrated: a client
	// that spawns cairn has its initialize answered at once, its calls wait for the start, and a
	// start that fails ends the process with its error.
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	startCtx, stopStart := context.WithCancel(ctx)
	started := make(chan struct{})
	go func() {
		defer close(started)
		err := bg.start(startCtx, c, cfg, jobOpts)
		acc.about.Embedder = bg.embedder
		if err = startServer(startCtx, srv, bg.pool, cfg, bg.knowledge, acc.about, err); err != nil {
			fail(startError{err})
			return
		}
		// For a person starting it over HTTP: where it serves and how to connect, as GET / says
		// too (JSON logs go to a collector, not a person).
		if ln != nil && c.String("log-format") != "json" {
			fmt.Fprint(os.Stderr, "\n"+acc.about.Text("http://"+ln.Addr().String())+"\n")
		}
	}()
	// Deferred after bg.close, so it runs first: once the transport is done, the start is given
	// up if it is still going, and jobs in flight finish while the pools are still open.
	defer func() {
		stopStart()
		<-started
		if bg.jobs != nil {
			stopJobs(bg.jobs, log)
		}
	}()

	if cfg.Transport == config.TransportStdio {
		log.Info("serving MCP over stdio", "version", cairnVersion(), "read_only", cfg.ReadOnly)
		if term.IsTerminal(int(os.Stdin.Fd())) {
			fmt.Fprint(os.Stderr, stdioHint)
		}
		err := srv.ServeStdio(ctx)
		if ctx.Err() == nil {
			// The client went away (or there was none): a start still going has a few seconds
			// to say whether it failed, so that a wrong setting does not exit 0.
			select {
			case <-started:
			case <-time.After(5 * time.Second):
			}
		}
		if err := startFailure(ctx); err != nil {
			return err
		}
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("stdio transport: %w", err)
		}
		return nil
	}
	if err := serveHTTP(ctx, ln, srv, cfg, log); err != nil {
		return err
	}
	return startFailure(ctx)
}

// startError is why a start failed (serve's fail).
type startError struct{ error }

func (e startError) Unwrap() error { return e.error }

// startFailure is why ctx ended if the start failed, else nil.
func startFailure(ctx context.Context) error {
	var se startError
	if errors.As(context.Cause(ctx), &se) {
		return se.error
	}
	return nil
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

// serveHTTP serves until ctx ends (SIGINT/SIGTERM), then stops accepting, lets calls in flight
// finish for up to 15 seconds, and returns.
func serveHTTP(ctx context.Context, ln net.Listener, srv *mcp.Server, cfg *config.Config, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	path := "/mcp"
	if cfg.Transport == config.TransportSSE {
		path = "/sse"
	}
	log.Info("serving MCP over HTTP", "transport", cfg.Transport, "url", "http://"+ln.Addr().String()+path,
		"also", "/mcp (Streamable HTTP), /sse (SSE), /healthz, /readyz", "auth", cfg.AuthConfigured(), "version", cairnVersion())
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing calls in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Shutdown stops accepting and waits for open requests; SSE streams stay open until their
	// sessions close, which Drain does once the calls in flight have answered.
	hs.RegisterOnShutdown(func() { srv.Drain(sctx) })
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown incomplete; closing open streams", "err", err)
		hs.Close()
	}
	return nil
}
