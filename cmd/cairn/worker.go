package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/mcp"
)

// retentionFlags set checkpoint retention (serve, worker, prune). Off unless set: deleting
// history is the operator's decision.
var retentionFlags = []cli.Flag{
	&cli.IntFlag{Name: "checkpoint-keep-last", EnvVars: []string{"CAIRN_CHECKPOINT_KEEP_LAST"}, Usage: "keep only the newest N checkpoints of each workflow and namespace (0: all)"},
	&cli.DurationFlag{Name: "checkpoint-max-age", EnvVars: []string{"CAIRN_CHECKPOINT_MAX_AGE"}, Usage: "drop checkpoints older than this, e.g. 720h (0: never); the newest of each workflow and those of interrupted workflows are always kept"},
	&cli.DurationFlag{Name: "execution-max-age", EnvVars: []string{"CAIRN_EXECUTION_MAX_AGE"}, Usage: "drop raw agent executions older than this, e.g. 2160h (0: keep); agent_metrics and the totals keep counting them from the rollups"},
}

// jobFlags are the settings of the commands that work background jobs (serve, worker).
var jobFlags = append([]cli.Flag{
	&cli.IntFlag{Name: "workers", Value: jobs.DefaultMaxWorkers, EnvVars: []string{"CAIRN_WORKERS"}, Usage: "most background jobs this process works at once"},
	&cli.DurationFlag{Name: "retention-interval", Value: time.Hour, EnvVars: []string{"CAIRN_RETENTION_INTERVAL"}, Usage: "how often the retention job runs (when retention is set)"},
}, append(retentionFlags, embedFlags...)...)

// retentionFrom reads the retention settings.
func retentionFrom(c *cli.Context) (checkpoint.Retention, error) {
	r := checkpoint.Retention{KeepLast: c.Int("checkpoint-keep-last"), MaxAge: c.Duration("checkpoint-max-age")}
	if r.KeepLast < 0 || r.MaxAge < 0 {
		return r, cli.Exit("--checkpoint-keep-last and --checkpoint-max-age must not be negative", 2)
	}
	return r, nil
}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "work background jobs only, no MCP, until SIGINT/SIGTERM",
		Description: `Any number of workers (and servers, which work jobs too) may run against one database;
PostgreSQL hands each job to one of them.

With --addr it serves /healthz, /readyz and /metrics there, as serve does (metrics need a token
when one is set; listening beyond loopback needs one).

Examples:
   cairn worker
   CAIRN_WORKERS=32 DATABASE_URL=postgres://cairn@db/cairn cairn worker
   CAIRN_AUTH_TOKEN=$(cat token) cairn worker --addr 0.0.0.0:8081`,
		Flags: slices.Concat([]cli.Flag{noMigrateFlag, pprofFlag,
			&cli.StringFlag{Name: "addr", EnvVars: []string{"CAIRN_WORKER_ADDR"}, Usage: "serve /healthz, /readyz and /metrics at this `host:port` (default: no listener)"},
		}, tokenFlags, jobFlags, dbFlags),
		Action: work,
	}
}

func work(c *cli.Context) error {
	cfg := configFrom(c)
	cfg.NoMigrate = c.Bool("no-migrate")
	if err := cfg.Normalize(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	opts, err := jobOptions(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	log := slog.Default()
	// The listener first, so that a taken port or a missing token fails at once.
	ops, err := opsListener(c, cfg, log, "addr", "/metrics")
	if err != nil {
		return err
	}
	if err := serveProfiles(ctx, c, cfg, log); err != nil {
		return err
	}
	if ops.ln != nil {
		defer ops.ln.Close()
	}
	waits := db.NewPoolWaits()
	cfg.PoolTracer = waits

	bg, err := startBackground(c, cfg, opts)
	if err != nil {
		return err
	}
	defer bg.close()
	defer stopJobs(bg.jobs, log)
	log.Info("working background jobs (no MCP)", "kinds", bg.reg.Kinds(), "periodic", bg.reg.NumPeriodic(),
		"max_workers", c.Int("workers"), "version", cairnVersion())
	if ops.ln != nil {
		hs := &http.Server{
			Handler: mcp.OpsHandler(mcp.OpsOptions{Pool: bg.pool, System: bg.system, PoolWaits: waits, Knowledge: bg.knowledge,
				Auth: ops.auth, Logger: log}),
			ReadHeaderTimeout: 10 * time.Second,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go hs.Serve(ops.ln)
		defer hs.Close()
		log.Info("serving /healthz, /readyz and /metrics", "url", "http://"+ops.ln.Addr().String())
	}
	<-ctx.Done()
	log.Info("shutting down: finishing jobs in flight")
	return nil
}

// opsEndpoint is a listener for operators' endpoints (a worker's /healthz, /readyz and
// /metrics; profiles) and who may read them; a nil listener when its flag is not set.
type opsEndpoint struct {
	ln   net.Listener
	auth *auth.Verifier
}

// opsListener listens on the address of flag, which serves what: beyond loopback only with a
// token, which then guards it.
func opsListener(c *cli.Context, cfg *config.Config, log *slog.Logger, flag, what string) (opsEndpoint, error) {
	addr := c.String(flag)
	if addr == "" {
		return opsEndpoint{}, nil
	}
	cfg.AuthToken, cfg.AuthTokens, cfg.AuthTokensFile = c.String("auth-token"), c.String("auth-tokens"), c.String("auth-tokens-file")
	loopback, err := config.IsLoopbackAddr(addr)
	if err != nil {
		return opsEndpoint{}, cli.Exit(fmt.Sprintf("--%s %q: %v", flag, addr, err), 2)
	}
	if !loopback && !cfg.AuthConfigured() {
		return opsEndpoint{}, cli.Exit(fmt.Sprintf("--%s %s listens beyond loopback: set --auth-token (CAIRN_AUTH_TOKEN) or a token file so that %s is not open to anyone", flag, addr, what), 2)
	}
	ao, err := auth.OptionsFromConfig(cfg, log)
	if err != nil {
		return opsEndpoint{}, cli.Exit(err.Error(), 2)
	}
	v, err := auth.New(ao)
	if err != nil {
		return opsEndpoint{}, cli.Exit(err.Error(), 2)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return opsEndpoint{}, cli.Exit(fmt.Sprintf("--%s: listen on %s: %v", flag, addr, err), 1)
	}
	return opsEndpoint{ln: ln, auth: v}, nil
}

// serveProfiles serves Go's profiles on --pprof-addr until ctx ends; it does nothing without it.
func serveProfiles(ctx context.Context, c *cli.Context, cfg *config.Config, log *slog.Logger) error {
	ep, err := opsListener(c, cfg, log, "pprof-addr", "/debug/pprof/")
	if err != nil || ep.ln == nil {
		return err
	}
	hs := &http.Server{Handler: mcp.ProfileHandler(ep.auth), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go hs.Serve(ep.ln)
	context.AfterFunc(ctx, func() { hs.Close() })
	log.Warn("serving Go's profiles: they show what the process does, not data, but cost CPU while taken",
		"url", "http://"+ep.ln.Addr().String()+"/debug/pprof/", "auth", ep.auth.Enabled())
	return nil
}

// background is what serve and worker share once started.
type background struct {
	// pool serves tool calls and the domain work of jobs; system serves River itself (fetching
	// jobs, electing a leader, notifications), migrations, /readyz and subscriptions, so that
	// tool calls holding every connection of pool cannot stall them.
	pool, system *pgxpool.Pool
	// embedded says the pools are on the embedded cluster.
	embedded bool
	// data says where the data lives; embedder which embedder the knowledge graph uses and why
	// (set by start).
	data, embedder string
	// Set by start:
	jobs      *jobs.Client
	reg       *jobs.Registry
	knowledge *knowledge.Store
}

// close closes both pools.
func (bg *background) close() {
	bg.pool.Close()
	bg.system.Close()
}

// startBackground is what serve and worker share: connect, migrate (unless --no-migrate), choose
// the embedder and start the job client. The caller closes the pool and stops the client.
func startBackground(c *cli.Context, cfg *config.Config, opts jobs.Options) (*background, error) {
	bg, err := openPools(c, cfg)
	if err != nil {
		return nil, err
	}
	if err := bg.start(c.Context, c, cfg, opts); err != nil {
		bg.close()
		return nil, err
	}
	return bg, nil
}

// openPools opens the pool of tool calls and the system pool without connecting yet (start
// checks that they can); without a configured database it starts the embedded cluster first.
func openPools(c *cli.Context, cfg *config.Config) (*background, error) {
	ctx := c.Context
	embedded := !cfg.DatabaseConfigured()
	pc, err := poolConfig(ctx, c, cfg)
	if err != nil {
		return nil, err
	}
	spc, err := cfg.SystemPoolConfig()
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	pool, err := db.OpenLazy(ctx, pc)
	if err != nil {
		return nil, err
	}
	system, err := db.OpenLazy(ctx, spc)
	if err != nil {
		pool.Close()
		return nil, err
	}
	bg := &background{pool: pool, system: system, embedded: embedded, data: db.Target(pc.ConnConfig.Config)}
	if embedded {
		bg.data = "the embedded PostgreSQL cluster in " + embeddedDataDir(c)
	}
	return bg, nil
}

// start does what takes the database: it checks that PostgreSQL answers, migrates (unless
// --no-migrate), chooses the embedder and starts the job client. ctx bounds the start; the job
// client runs until c's context ends or it is stopped.
func (bg *background) start(ctx context.Context, c *cli.Context, cfg *config.Config, opts jobs.Options) error {
	if err := db.Ping(ctx, bg.system); err != nil {
		return err
	}
	// The embedded cluster is cairn's own: its one role is a superuser by construction.
	if !bg.embedded {
		if super, role, err := db.Superuser(ctx, bg.pool); err == nil && super {
			slog.Warn(db.SuperuserWarning, "role", role)
		}
	}
	if err := prepareSchema(ctx, bg.system, cfg.NoMigrate, slog.Default()); err != nil {
		return err
	}
	kg, emb, note, err := openKnowledge(c, bg.pool, opts)
	if err != nil {
		return err
	}
	bg.knowledge, bg.embedder = kg, note
	if bg.reg, err = jobRegistry(c, bg.pool); err != nil {
		return err
	}
	if err := addEmbedding(c, bg.reg, kg, emb); err != nil {
		return err
	}
	bg.jobs, err = jobs.Start(c.Context, bg.system, bg.reg, opts)
	return err
}

// jobRegistry collects the workers and periodic jobs of cairn's domain modules, the same for
// serve and worker.
func jobRegistry(c *cli.Context, pool *pgxpool.Pool) (*jobs.Registry, error) {
	reg := jobs.NewRegistry()
	policy, err := retentionFrom(c)
	if err != nil {
		return nil, err
	}
	every := c.Duration("retention-interval")
	if every <= 0 {
		return nil, cli.Exit("--retention-interval must be positive", 2)
	}
	if err := jobs.AddRetention(reg, checkpoint.New(pool), policy, every, slog.Default()); err != nil {
		return nil, err
	}
	maxAge := c.Duration("execution-max-age")
	if maxAge < 0 {
		return nil, cli.Exit("--execution-max-age must not be negative", 2)
	}
	if err := jobs.AddExecutionRetention(reg, agents.New(pool), maxAge, every, slog.Default()); err != nil {
		return nil, err
	}
	return reg, nil
}

// jobOptions reads the job settings.
func jobOptions(c *cli.Context) (jobs.Options, error) {
	n := c.Int("workers")
	if n < 1 || n > river.QueueNumWorkersMax {
		return jobs.Options{}, cli.Exit(fmt.Sprintf("--workers %d: use 1 to %d", n, river.QueueNumWorkersMax), 2)
	}
	log := slog.Default()
	opts := jobs.Options{Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: n}}, Logger: log}
	if log.Enabled(c.Context, slog.LevelDebug) {
		// River's info messages (client start and stop, leadership) are what one debugs jobs with.
		opts.RiverLogLevel = slog.LevelInfo
	}
	return opts, nil
}

// stopJobs stops the job client once the process is otherwise done: jobs in flight get
// jobs.DefaultStopTimeout to finish, then are cancelled (River queues them again) and given a
// few seconds more to return.
func stopJobs(jc *jobs.Client, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), jobs.DefaultStopTimeout+5*time.Second)
	defer cancel()
	if err := jc.Stop(ctx); err != nil {
		log.Warn("jobs still running at exit; River rescues them later", "err", err)
	}
}
