package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
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

// knowledgeOptions reads the embedder flags for the knowledge graph (serve, worker, call).
func knowledgeOptions(c *cli.Context, jo jobs.Options) (backend.KnowledgeOptions, error) {
	if n := c.Int("embed-batch"); n < 1 || n > 2048 {
		return backend.KnowledgeOptions{}, cli.Exit(fmt.Sprintf("--embed-batch %d: use 1 to 2048", n), 2)
	}
	return backend.KnowledgeOptions{Embed: embedOptions(c), MaxBackoff: c.Duration("embed-max-backoff"), Jobs: jo, Logger: slog.Default()}, nil
}

// embedOptions reads the embedder flags; ForColumns fits them to the graph's vector columns.
func embedOptions(c *cli.Context) embed.Options {
	return embed.Options{Provider: c.String("embedder"), Host: c.String("ollama-host"), Model: c.String("embed-model"),
		BatchSize: c.Int("embed-batch"), Timeout: c.Duration("embed-timeout"), LoadTimeout: loadTimeout(c), Logger: slog.Default()}
}

// embeddingOptions reads the settings of the embed worker (serve, worker).
func embeddingOptions(c *cli.Context) (jobs.EmbedOptions, error) {
	sweep, backoff := c.Duration("embed-sweep"), c.Duration("embed-max-backoff")
	if sweep <= 0 || backoff <= 0 {
		return jobs.EmbedOptions{}, cli.Exit("--embed-sweep and --embed-max-backoff must be positive", 2)
	}
	if n := c.Int("embed-workers"); n < 1 || n > 100 {
		return jobs.EmbedOptions{}, cli.Exit(fmt.Sprintf("--embed-workers %d: use 1 to 100", n), 2)
	}
	return jobs.EmbedOptions{Sweep: sweep, MaxBackoff: backoff, Workers: c.Int("embed-workers"), CallTimeout: loadTimeout(c),
		Pipeline: knowledge.EmbedOptions{Batch: c.Int("embed-batch")}, Logger: slog.Default()}, nil
}

// loadTimeout is --embed-load-timeout, for the commands that have it (others take the default).
func loadTimeout(c *cli.Context) time.Duration {
	if d := c.Duration("embed-load-timeout"); d > 0 {
		return d
	}
	return embed.DefaultLoadTimeout
}
