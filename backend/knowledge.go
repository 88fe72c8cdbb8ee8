package backend

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

// KnowledgeOptions choose the knowledge graph's embedder and how its writes queue embed jobs.
type KnowledgeOptions struct {
	// Embed are the embedder settings; they are fitted to the graph's vector columns.
	Embed embed.Options
	// MaxBackoff caps the wait between probes of a failing embedder (embed.GuardOptions).
	MaxBackoff time.Duration
	// Jobs configure the client that queues embed jobs.
	Jobs   jobs.Options
	Logger *slog.Logger
}

// Knowledge is the knowledge graph as a process opened it.
type Knowledge struct {
	Store *knowledge.Store
	// Embedder embeds new rows; nil without the knowledge tables.
	Embedder embed.Embedder
	// Choice says which embedder was chosen and why, for logs and GET /.
	Choice string
}

// OpenKnowledge builds the knowledge store with its embedder and a job queue. Without the
// knowledge tables (no pgvector when cairn migrated) it returns a store that says so on every
// call and no embedder, so that the rest of cairn still serves.
func OpenKnowledge(ctx context.Context, pool *pgxpool.Pool, o KnowledgeOptions) (Knowledge, error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	dims, err := knowledge.New(pool, knowledge.Options{}).ColumnDimensions(ctx, knowledge.KindEntity)
	if errors.Is(err, knowledge.ErrUnavailable) {
		log.Warn("knowledge graph unavailable: " + err.Error())
		return Knowledge{Store: knowledge.New(pool, knowledge.Options{Logger: log}), Choice: "none: the knowledge graph needs pgvector"}, nil
	}
	if err != nil {
		return Knowledge{}, err
	}
	eo := o.Embed.ForColumns(dims)
	e, choice, err := embed.Choose(ctx, eo)
	if err != nil {
		return Knowledge{}, &config.UsageError{Err: err}
	}
	choice.Log(log, e)
	// One view of each Ollama model's health for all this process embeds with it.
	guard := embed.GuardOptions{MaxInterval: o.MaxBackoff, Logger: log}
	e = embed.Guarded(e, guard)
	ins, err := jobs.NewInserter(pool, o.Jobs)
	if err != nil {
		return Knowledge{}, err
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
		return Knowledge{}, err
	} else if n > 0 {
		log.Info("queued again the knowledge rows that failed for a model-level reason", "rows", n)
	}
	return Knowledge{Store: store, Embedder: e, Choice: choice.Describe(e)}, nil
}
