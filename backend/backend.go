package backend

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/jobs"
)

// Options configure a Backend: where the database is, and the background work it runs.
type Options struct {
	Config *config.Config
	// DataDir is the embedded cluster's data directory ("" the default), used when Config names
	// no database.
	DataDir string
	// NoMigrate only warns about a schema behind this cairn instead of migrating it.
	NoMigrate bool
	// Jobs configure the job client.
	Jobs jobs.Options
	// Knowledge chooses the graph's embedder (its Jobs are replaced by Jobs).
	Knowledge KnowledgeOptions
	// Embedding configures the embed worker, registered when the graph has an embedder.
	Embedding jobs.EmbedOptions
	// Retention of checkpoints and of raw agent executions (0: keep), applied every
	// RetentionEvery.
	Retention       checkpoint.Retention
	ExecutionMaxAge time.Duration
	RetentionEvery  time.Duration
	Logger          *slog.Logger
}

// Backend is what serve and worker share: the pools, and once started the knowledge graph and
// the job client.
type Backend struct {
	// Pool serves tool calls and the domain work of jobs; System serves River itself (fetching
	// jobs, electing a leader, notifications), migrations, /readyz and subscriptions, so that
	// tool calls holding every connection of Pool cannot stall them.
	Pool, System *pgxpool.Pool
	// Embedded says the pools are on the embedded cluster.
	Embedded bool
	// Data says where the data lives, for people.
	Data string
	// Set by Start:
	Knowledge Knowledge
	Jobs      *jobs.Client
	Registry  *jobs.Registry

	opts Options
}

// Open opens the pool of tool calls and the system pool without connecting yet (Start checks
// that they can); without a configured database it starts the embedded cluster first.
func Open(ctx context.Context, o Options) (*Backend, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg := o.Config
	embedded := !cfg.DatabaseConfigured()
	pc, err := PoolConfig(ctx, cfg, o.DataDir, o.Logger)
	if err != nil {
		return nil, err
	}
	spc, err := cfg.SystemPoolConfig()
	if err != nil {
		return nil, &config.UsageError{Err: err}
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
	b := &Backend{Pool: pool, System: system, Embedded: embedded, Data: db.Target(pc.ConnConfig.Config), opts: o}
	if embedded {
		b.Data = "the embedded PostgreSQL cluster in " + EmbeddedDataDir(o.DataDir)
	}
	return b, nil
}

// Start does what takes the database: it checks that PostgreSQL answers, migrates (unless
// NoMigrate), opens the knowledge graph and starts the job client. ctx bounds the start; the
// job client runs until run ends or StopJobs, so that giving up a start does not cut jobs short.
func (b *Backend) Start(ctx, run context.Context) error {
	log := b.opts.Logger
	if err := db.Ping(ctx, b.System); err != nil {
		return err
	}
	// The embedded cluster is cairn's own: its one role is a superuser by construction.
	if !b.Embedded {
		if super, role, err := db.Superuser(ctx, b.Pool); err == nil && super {
			log.Warn(db.SuperuserWarning, "role", role)
		}
	}
	if err := PrepareSchema(ctx, b.System, b.opts.NoMigrate, log); err != nil {
		return err
	}
	ko := b.opts.Knowledge
	ko.Jobs = b.opts.Jobs
	kg, err := OpenKnowledge(ctx, b.Pool, ko)
	if err != nil {
		return err
	}
	b.Knowledge = kg
	if b.Registry, err = b.registry(); err != nil {
		return err
	}
	b.Jobs, err = jobs.Start(run, b.System, b.Registry, b.opts.Jobs)
	return err
}

// registry collects the workers and periodic jobs of cairn's domain modules, the same for serve
// and worker.
func (b *Backend) registry() (*jobs.Registry, error) {
	o, log := b.opts, b.opts.Logger
	reg := jobs.NewRegistry()
	if err := jobs.AddRetention(reg, checkpoint.New(b.Pool), o.Retention, o.RetentionEvery, log); err != nil {
		return nil, err
	}
	if err := jobs.AddExecutionRetention(reg, agents.New(b.Pool), o.ExecutionMaxAge, o.RetentionEvery, log); err != nil {
		return nil, err
	}
	if b.Knowledge.Embedder != nil {
		if err := jobs.AddEmbedding(reg, b.Knowledge.Store, o.Embedding); err != nil {
			return nil, err
		}
	}
	return reg, nil
}

// StopJobs stops the job client once the process is otherwise done: jobs in flight get
// jobs.DefaultStopTimeout to finish, then are cancelled (River queues them again) and given a
// few seconds more to return. It does nothing before Start has started the client.
func (b *Backend) StopJobs() {
	if b.Jobs == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), jobs.DefaultStopTimeout+5*time.Second)
	defer cancel()
	if err := b.Jobs.Stop(ctx); err != nil {
		b.opts.Logger.Warn("jobs still running at exit; River rescues them later", "err", err)
	}
}

// Close closes both pools.
func (b *Backend) Close() {
	b.Pool.Close()
	b.System.Close()
}
