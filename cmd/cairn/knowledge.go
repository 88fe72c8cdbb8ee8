package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

// embedFlags choose and tune the embedder of the knowledge graph (serve, worker).
var embedFlags = []cli.Flag{
	&cli.StringFlag{Name: "embedder", Value: embed.ProviderAuto, EnvVars: []string{"CAIRN_EMBEDDER"}, Usage: "auto (Ollama if it answers with the model, else built-in), ollama or builtin (deterministic hashing, no network)"},
	&cli.StringFlag{Name: "embed-model", Value: embed.DefaultModel, EnvVars: []string{"CAIRN_EMBED_MODEL"}, Usage: "Ollama embedding model; its vectors must fit the graph's columns (768 dimensions unless re-indexed)"},
	&cli.StringFlag{Name: "ollama-host", EnvVars: []string{"OLLAMA_HOST"}, Usage: "Ollama's address, read as Ollama reads it (default http://127.0.0.1:11434)"},
	&cli.IntFlag{Name: "embed-workers", Value: jobs.DefaultEmbedWorkers, EnvVars: []string{"CAIRN_EMBED_WORKERS"}, Usage: "embed runs this process works at once (each embeds full batches of what is pending)"},
	&cli.IntFlag{Name: "embed-batch", Value: embed.DefaultBatchSize, EnvVars: []string{"CAIRN_EMBED_BATCH"}, Usage: "texts per embed call"},
	&cli.DurationFlag{Name: "embed-timeout", Value: embed.DefaultTimeout, EnvVars: []string{"CAIRN_EMBED_TIMEOUT"}, Usage: "longest one Ollama embed call of a batch may take; longer means Ollama hangs, and embedding waits until it answers again"},
	&cli.DurationFlag{Name: "embed-load-timeout", Value: embed.DefaultLoadTimeout, EnvVars: []string{"CAIRN_EMBED_LOAD_TIMEOUT"}, Usage: "longest the call that loads the model into Ollama may take (the first after minutes without calls)"},
	&cli.DurationFlag{Name: "embed-sweep", Value: jobs.DefaultEmbedSweep, EnvVars: []string{"CAIRN_EMBED_SWEEP"}, Usage: "how often pending rows no job was queued for (raw SQL writes) are embedded"},
	&cli.DurationFlag{Name: "embed-max-backoff", Value: jobs.DefaultEmbedMaxBackoff, EnvVars: []string{"CAIRN_EMBED_MAX_BACKOFF"}, Usage: "longest wait between two probes of a failing embedder (one probe at a time per process; embedding resumes as soon as one succeeds)"},
}

// openKnowledge builds the knowledge store with its embedder and a job queue. Without the
// knowledge tables (no pgvector when cairn migrated) it returns a store that says so on every
// call and no embedder.
func openKnowledge(c *cli.Context, pool *pgxpool.Pool, opts jobs.Options) (*knowledge.Store, embed.Embedder, string, error) {
	ctx := c.Context
	log := slog.Default()
	dims, err := knowledge.New(pool, knowledge.Options{}).ColumnDimensions(ctx, knowledge.KindEntity)
	if errors.Is(err, knowledge.ErrUnavailable) {
		log.Warn("knowledge graph unavailable: " + err.Error())
		return knowledge.New(pool, knowledge.Options{Logger: log}), nil, "none: the knowledge graph needs pgvector", nil
	}
	if err != nil {
		return nil, nil, "", err
	}
	if n := c.Int("embed-batch"); n < 1 || n > 2048 {
		return nil, nil, "", cli.Exit(fmt.Sprintf("--embed-batch %d: use 1 to 2048", n), 2)
	}
	eo := embedOptions(c).ForColumns(dims)
	e, choice, err := embed.Choose(ctx, eo)
	if err != nil {
		return nil, nil, "", cli.Exit(err.Error(), 2)
	}
	choice.Log(log, e)
	// One view of each Ollama model's health for all this process embeds with it.
	guard := embed.GuardOptions{MaxInterval: c.Duration("embed-max-backoff"), Logger: log}
	e = embed.Guarded(e, guard)
	ins, err := jobs.NewInserter(pool, opts)
	if err != nil {
		return nil, nil, "", err
	}
	// A kind whose vectors were made by another model than this process's (chosen by the first
	// process to embed, or by `cairn reindex`) is embedded and searched with that model.
	factory := func(i embed.Info) (embed.Embedder, error) {
		fo := eo
		fo.Provider, fo.Model, fo.Dimensions = i.Provider, i.Model, i.Dimensions
		if i.Provider == embed.ProviderBuiltin {
			return embed.NewBuiltin(i.Dimensions)
		}
		o, err := embed.NewOllama(fo)
		if err != nil {
			return nil, err
		}
		return embed.NewGuard(o, guard), nil
	}
	store := knowledge.New(pool, knowledge.Options{Queue: jobs.EmbedQueue{Client: ins}, Embedder: e, Factory: factory, Logger: log})
	if n, err := store.RetryModelFailures(ctx); err != nil {
		return nil, nil, "", err
	} else if n > 0 {
		log.Info("queued again the knowledge rows that failed for a model-level reason", "rows", n)
	}
	return store, e, choice.Describe(e), nil
}

// embedOptions reads the embedder flags; ForColumns fits them to the graph's vector columns.
func embedOptions(c *cli.Context) embed.Options {
	return embed.Options{Provider: c.String("embedder"), Host: c.String("ollama-host"), Model: c.String("embed-model"),
		BatchSize: c.Int("embed-batch"), Timeout: c.Duration("embed-timeout"), LoadTimeout: loadTimeout(c), Logger: slog.Default()}
}

// addEmbedding registers the embed worker when the graph has an embedder.
func addEmbedding(c *cli.Context, reg *jobs.Registry, store *knowledge.Store, e embed.Embedder) error {
	if e == nil {
		return nil
	}
	sweep, backoff := c.Duration("embed-sweep"), c.Duration("embed-max-backoff")
	if sweep <= 0 || backoff <= 0 {
		return cli.Exit("--embed-sweep and --embed-max-backoff must be positive", 2)
	}
	if n := c.Int("embed-workers"); n < 1 || n > 100 {
		return cli.Exit(fmt.Sprintf("--embed-workers %d: use 1 to 100", n), 2)
	}
	return jobs.AddEmbedding(reg, store, jobs.EmbedOptions{Sweep: sweep, MaxBackoff: backoff, Workers: c.Int("embed-workers"), CallTimeout: loadTimeout(c),
		Pipeline: knowledge.EmbedOptions{Batch: c.Int("embed-batch")}, Logger: slog.Default()})
}

// loadTimeout is --embed-load-timeout, for the commands that have it (others take the default).
func loadTimeout(c *cli.Context) time.Duration {
	if d := c.Duration("embed-load-timeout"); d > 0 {
		return d
	}
	return embed.DefaultLoadTimeout
}
