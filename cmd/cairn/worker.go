package main

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/riverqueue/river"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/jobs"
)

// jobFlags are the settings of the commands that work background jobs (serve, worker).
var jobFlags = []cli.Flag{
	&cli.IntFlag{Name: "workers", Value: jobs.DefaultMaxWorkers, EnvVars: []string{"CAIRN_WORKERS"}, Usage: "most background jobs this process works at once"},
}

func workerCommand() *cli.Command {
	return &cli.Command{
		Name:  "worker",
		Usage: "work background jobs only, no MCP, until SIGINT/SIGTERM",
		Description: `Any number of workers (and servers, which work jobs too) may run against one database;
PostgreSQL hands each job to one of them.

Examples:
   cairn worker
   CAIRN_WORKERS=32 DATABASE_URL=postgres://cairn@db/cairn cairn worker`,
		Flags:  slices.Concat([]cli.Flag{noMigrateFlag}, jobFlags, dbFlags),
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

	pool, err := connect(ctx, c, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := prepareSchema(ctx, pool, cfg.NoMigrate, log); err != nil {
		return err
	}
	reg, err := jobRegistry()
	if err != nil {
		return err
	}
	jc, err := jobs.Start(ctx, pool, reg, opts)
	if err != nil {
		return err
	}
	defer stopJobs(jc, log)
	log.Info("working background jobs (no MCP)", "kinds", reg.Kinds(), "periodic", reg.NumPeriodic(),
		"max_workers", c.Int("workers"), "version", cairnVersion())
	<-ctx.Done()
	log.Info("shutting down: finishing jobs in flight")
	return nil
}

// jobRegistry collects the workers and periodic jobs of cairn's domain modules, the same for
// serve and worker. It is empty until those modules register theirs.
func jobRegistry() (*jobs.Registry, error) {
	return jobs.NewRegistry(), nil
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
