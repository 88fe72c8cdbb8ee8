package main

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/jobs"
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
	opts, err := backendOptions(c, cfg)
	if err != nil {
		return err
	}
	ctx := c.Context
	log := slog.Default()
	// The listener first, so that a taken port or a missing token fails at once.
	ops, err := opsListener(c, cfg, "addr", "/metrics")
	if err != nil {
		return err
	}
	if ops.Listener != nil {
		defer ops.Listener.Close()
	}
	if err := serveProfiles(c, cfg); err != nil {
		return err
	}
	waits := db.NewPoolWaits()
	cfg.PoolTracer = waits

	bg, err := backend.Open(ctx, opts)
	if err != nil {
		return err
	}
	defer bg.Close()
	if err := bg.Start(ctx, ctx); err != nil {
		return err
	}
	defer bg.StopJobs()
	log.Info("working background jobs (no MCP)", "kinds", bg.Registry.Kinds(), "periodic", bg.Registry.NumPeriodic(),
		"max_workers", c.Int("workers"), "version", cairnVersion())
	if ops.Listener != nil {
		mcp.ServeOps(ctx, ops.Listener, mcp.OpsHandler(mcp.OpsOptions{Pool: bg.Pool, System: bg.System, PoolWaits: waits,
			Knowledge: bg.Knowledge.Store, Auth: ops.Auth, Logger: log}), log)
		log.Info("serving /healthz, /readyz and /metrics", "url", "http://"+ops.Listener.Addr().String())
	}
	<-ctx.Done()
	log.Info("shutting down: finishing jobs in flight")
	return nil
}

// opsListener listens on the address of flag (none when it is unset), which serves what:
// beyond loopback only with a token, which then guards it.
func opsListener(c *cli.Context, cfg *config.Config, flag, what string) (mcp.OpsEndpoint, error) {
	addr := c.String(flag)
	if addr == "" {
		return mcp.OpsEndpoint{}, nil
	}
	cfg.AuthToken, cfg.AuthTokens, cfg.AuthTokensFile = c.String("auth-token"), c.String("auth-tokens"), c.String("auth-tokens-file")
	ep, err := mcp.ListenOps(addr, "--"+flag, what, cfg, slog.Default())
	if ue := (*config.UsageError)(nil); err != nil && !errors.As(err, &ue) {
		return ep, cli.Exit(err.Error(), 1)
	}
	return ep, err
}

// serveProfiles serves Go's profiles on --pprof-addr until the command ends; it does nothing
// without it.
func serveProfiles(c *cli.Context, cfg *config.Config) error {
	ep, err := opsListener(c, cfg, "pprof-addr", "/debug/pprof/")
	if err != nil || ep.Listener == nil {
		return err
	}
	mcp.ServeProfiles(c.Context, ep, slog.Default())
	return nil
}

// backendOptions reads what serve and worker run besides the tools: the job client, retention
// and the embedder. Every setting is checked before anything connects.
func backendOptions(c *cli.Context, cfg *config.Config) (backend.Options, error) {
	jo, err := jobOptions(c)
	if err != nil {
		return backend.Options{}, err
	}
	policy, err := retentionFrom(c)
	if err != nil {
		return backend.Options{}, err
	}
	every, maxAge := c.Duration("retention-interval"), c.Duration("execution-max-age")
	if every <= 0 {
		return backend.Options{}, cli.Exit("--retention-interval must be positive", 2)
	}
	if maxAge < 0 {
		return backend.Options{}, cli.Exit("--execution-max-age must not be negative", 2)
	}
	ko, err := knowledgeOptions(c, jo)
	if err != nil {
		return backend.Options{}, err
	}
	eo, err := embeddingOptions(c)
	if err != nil {
		return backend.Options{}, err
	}
	return backend.Options{Config: cfg, DataDir: c.String("data-dir"), NoMigrate: cfg.NoMigrate, Jobs: jo, Knowledge: ko,
		Embedding: eo, Retention: policy, ExecutionMaxAge: maxAge, RetentionEvery: every, Logger: slog.Default()}, nil
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
