// Package jobs runs cairn's background work on River (github.com/riverqueue/river): the job
// tables live in cairn's database, domain packages queue jobs in their own transactions, and
// every `cairn serve` and `cairn worker` process works them, coordinated by PostgreSQL.
package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"
)

// Defaults of Options.
const (
	DefaultMaxWorkers  = 10
	DefaultStopTimeout = 10 * time.Second
)

// Options configure the job client; zero values mean the defaults.
type Options struct {
	// Queues to work and how many jobs of each run at once; default
	// {river.QueueDefault: {MaxWorkers: DefaultMaxWorkers}}.
	Queues map[string]river.QueueConfig
	// Logger receives cairn's messages about jobs and River's own; default slog.Default().
	Logger *slog.Logger
	// RiverLogLevel is the least severe of River's messages that reach Logger; default warn,
	// because River reports every start, stop and leadership change at info.
	RiverLogLevel slog.Leveler
	// StopTimeout is how long Stop lets jobs in flight finish before cancelling them; default
	// DefaultStopTimeout.
	StopTimeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.Queues == nil {
		o.Queues = map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: DefaultMaxWorkers}}
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	return o
}

// Client queues jobs and, when the registry it started from has workers, works them.
type Client struct {
	river       *river.Client[pgx.Tx]
	working     bool
	stopTimeout time.Duration
	log         *slog.Logger
}

// RescueStuckJobsAfter is how long a job may run, at least, before River takes its process for
// dead and retries it elsewhere: minutes rather than River's default hour. Workers with longer
// timeouts declare them (Registry.AddTimeout).
const RescueStuckJobsAfter = 5 * time.Minute

// Start creates the job client on pool and starts working the registry's jobs. With nothing
// registered it only queues (River will not work without a worker; another process may have
// them). ctx bounds the start only: the client runs until Stop.
func Start(ctx context.Context, pool *pgxpool.Pool, reg *Registry, opts Options) (*Client, error) {
	opts = opts.withDefaults()
	workers, err := reg.workers()
	if err != nil {
		return nil, err
	}
	working := len(reg.kinds) > 0
	if !working && len(reg.periodic) > 0 {
		return nil, errors.New("start jobs: periodic jobs are registered but no worker")
	}
	cfg := &river.Config{Logger: riverLogger(opts.Logger, opts.RiverLogLevel),
		// A job whose process died stays "running" until the rescuer sees it: after minutes,
		// not River's default hour. Every cairn job's timeout is well below this.
		RescueStuckJobsAfter: reg.rescueAfter()}
	if working {
		cfg.Queues = maps.Clone(opts.Queues)
		maps.Copy(cfg.Queues, reg.queues)
		cfg.Workers = workers
		cfg.PeriodicJobs = slices.Clone(reg.periodic)
	}
	rc, err := river.NewClient(riverpgxv5.New(pool), cfg)
	if err != nil {
		return nil, fmt.Errorf("create job client: %w", err)
	}
	c := &Client{river: rc, working: working, stopTimeout: opts.StopTimeout, log: opts.Logger}
	if !working {
		opts.Logger.Debug("no job workers registered: jobs are queued here but not worked")
		return c, nil
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start jobs: %w", err)
	}
	// River derives the jobs' contexts from this one: were it the caller's, the signal that ends
	// the process would cancel jobs in flight before Stop could let them finish.
	if err := rc.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, fmt.Errorf("start jobs: %w", err)
	}
	for _, args := range reg.atStart {
		if _, err := rc.Insert(ctx, args, nil); err != nil {
			opts.Logger.Warn("queue a start-up job", "kind", args.Kind(), "err", err)
		}
	}
	return c, nil
}

// NewInserter returns a client that only queues jobs, for code that must queue in its own
// transactions but is built before the working client (whose workers may need that code).
func NewInserter(pool *pgxpool.Pool, opts Options) (*Client, error) {
	return Start(context.Background(), pool, NewRegistry(), opts)
}

// Stop stops fetching jobs and lets those in flight finish for Options.StopTimeout, then
// cancels their contexts and waits, until ctx ends, for them to return.
func (c *Client) Stop(ctx context.Context) error {
	if !c.working {
		return nil
	}
	soft, cancel := context.WithTimeout(ctx, c.stopTimeout)
	err := c.river.Stop(soft)
	cancel()
	if err == nil {
		return nil
	}
	c.log.Warn("jobs still running at the stop timeout: cancelling them", "timeout", c.stopTimeout)
	if err := c.river.StopAndCancel(ctx); err != nil {
		return fmt.Errorf("stop jobs: %w", err)
	}
	return nil
}

// Insert queues a job in a transaction of its own.
func (c *Client) Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := c.river.Insert(ctx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return res, nil
}

// InsertTx queues a job in the caller's transaction: it is worked once tx commits, and never if
// tx rolls back.
func (c *Client) InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error) {
	res, err := c.river.InsertTx(ctx, tx, args, opts)
	if err != nil {
		return nil, fmt.Errorf("queue %s job: %w", args.Kind(), err)
	}
	return res, nil
}

// River returns the underlying River client, for what Insert and InsertTx do not cover
// (InsertManyTx, JobCompleteTx in a worker, queue control).
func (c *Client) River() *river.Client[pgx.Tx] { return c.river }
