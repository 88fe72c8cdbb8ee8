package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/progress"
	"github.com/cairn-mcp/cairn/knowledge"
)

func reindexCommand() *cli.Command {
	return &cli.Command{
		Name:      "reindex",
		Usage:     "re-embed the knowledge graph with another model, or rebuild its vector indexes, without downtime",
		ArgsUsage: " ",
		Description: `Re-embeds every entity and/or episode with a new model into columns of its own while search keeps
answering from the current vectors and writes go on, builds the HNSW index concurrently, then
switches in one short transaction: from then on every cairn process embeds and searches with the
new model. Killed mid-way, it continues where it stopped when run again with the same model
(--abort drops an unfinished reindex instead). Vectors written by SQL (insert_vector) are
replaced by the new model's.

--index-only rebuilds the current vector indexes concurrently (REINDEX CONCURRENTLY), e.g. after a
bulk load.

Examples:
   cairn reindex --model mxbai-embed-large --dims 1024
   cairn reindex --embedder ollama --model all-minilm --kind episodes
   cairn reindex --embedder builtin --dims 384
   cairn reindex --index-only`,
		Flags: slices.Concat([]cli.Flag{
			&cli.StringFlag{Name: "embedder", Value: embed.ProviderOllama, Usage: "provider of the new model: ollama or builtin"},
			&cli.StringFlag{Name: "model", Aliases: []string{"embed-model"}, Value: embed.DefaultModel, Usage: "the new Ollama model"},
			&cli.IntFlag{Name: "dims", Usage: "the new model's dimensions (default: asked of the model; the built-in embedder: the current size)"},
			&cli.StringFlag{Name: "kind", Value: "all", Usage: "entities, episodes or all"},
			&cli.BoolFlag{Name: "index-only", Usage: "only rebuild the vector indexes concurrently"},
			&cli.BoolFlag{Name: "abort", Usage: "drop an unfinished reindex (its new vectors), keeping the current ones"},
			&cli.BoolFlag{Name: "force", Usage: "re-embed even a kind already embedded with this model"},
			&cli.IntFlag{Name: "batch", Value: embed.DefaultBatchSize, Usage: "texts per embed call"},
			&cli.StringFlag{Name: "ollama-host", EnvVars: []string{"OLLAMA_HOST"}, Usage: "Ollama's address, read as Ollama reads it"},
			&cli.DurationFlag{Name: "embed-timeout", Value: embed.DefaultTimeout, EnvVars: []string{"CAIRN_EMBED_TIMEOUT"}, Usage: "longest one embed call may take"},
			&cli.BoolFlag{Name: "json", Usage: "print the result as JSON"},
		}, dbFlags),
		Action: reindex,
	}
}

func reindex(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("reindex takes no arguments (got %q); see `cairn reindex --help`", c.Args().First()), 2)
	}
	var kinds []string
	switch c.String("kind") {
	case "all":
	case "entities", knowledge.KindEntity:
		kinds = []string{knowledge.KindEntity}
	case "episodes", knowledge.KindEpisode:
		kinds = []string{knowledge.KindEpisode}
	default:
		return cli.Exit(fmt.Sprintf("--kind %q: use entities, episodes or all", c.String("kind")), 2)
	}
	if c.Bool("index-only") && c.Bool("abort") {
		return cli.Exit("--index-only and --abort do not go together", 2)
	}
	if n := c.Int("batch"); n < 1 || n > 2048 {
		return cli.Exit(fmt.Sprintf("--batch %d: use 1 to 2048", n), 2)
	}
	ctx := c.Context
	pool, err := openDB(c)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := backend.PrepareSchema(ctx, pool, true, slog.Default()); err != nil {
		return err
	}
	store := knowledge.New(pool, knowledge.Options{})
	errOut := c.App.ErrWriter

	switch {
	case c.Bool("abort"):
		if err := store.AbortReindex(ctx, kinds); err != nil {
			return reindexError(err)
		}
		fmt.Fprintln(c.App.Writer, "unfinished reindex dropped; the current vectors are unchanged")
		return nil
	case c.Bool("index-only"):
		start := time.Now()
		fmt.Fprintln(errOut, "rebuilding the vector indexes concurrently (searches and writes go on)…")
		if err := store.RebuildIndexes(ctx, kinds); err != nil {
			return reindexError(err)
		}
		fmt.Fprintf(c.App.Writer, "vector indexes rebuilt in %s\n", time.Since(start).Round(time.Millisecond))
		return nil
	}

	emb, err := newModelEmbedder(c, store)
	if err != nil {
		return err
	}
	bars := progress.NewGroup(errOut, func(kind string) string { return "re-embedding " + kind + "s" }, progress.Items)
	results, err := store.Reindex(ctx, knowledge.ReindexOptions{
		Kinds: kinds, Embedder: emb, Batch: c.Int("batch"), Force: c.Bool("force"), Progress: bars.Set,
		Phase: func(kind, phase string) {
			if phase != "embedding" {
				bars.Done(kind)
				fmt.Fprintf(errOut, "%s: %s\n", knowledge.Plural(kind), phase)
			}
		},
	})
	bars.DoneAll()
	if err != nil {
		return reindexError(err)
	}
	if c.Bool("json") {
		return writeJSON(c.App.Writer, map[string]any{"model": knowledge.ModelLabel(emb.Info()), "kinds": results})
	}
	for _, r := range results {
		switch {
		case r.Skipped != "":
			fmt.Fprintf(c.App.Writer, "%s: nothing to do: %s\n", knowledge.Plural(r.Kind), r.Skipped)
		default:
			resumed := ""
			if r.Resumed {
				resumed = " (resumed)"
			}
			fmt.Fprintf(c.App.Writer, "%s: switched from %s to %s%s: %d embedded, %d failed\n", knowledge.Plural(r.Kind), orNone(r.From), r.To, resumed, r.Embedded, r.Failed)
		}
	}
	return nil
}

// newModelEmbedder builds the embedder of the new model, asking an Ollama model its size when
// --dims is not given.
func newModelEmbedder(c *cli.Context, store *knowledge.Store) (embed.Embedder, error) {
	dims := c.Int("dims")
	if dims < 0 || dims > 2000 {
		return nil, cli.Exit(fmt.Sprintf("--dims %d: use 1 to 2000 (the most an HNSW index takes)", dims), 2)
	}
	switch strings.ToLower(c.String("embedder")) {
	case embed.ProviderBuiltin:
		if dims == 0 {
			d, err := store.ColumnDimensions(c.Context, knowledge.KindEntity)
			if err != nil {
				return nil, err
			}
			dims = d
		}
		return embed.NewBuiltin(dims)
	case embed.ProviderOllama:
		o, err := embed.NewOllama(embed.Options{Host: c.String("ollama-host"), Model: c.String("model"), Dimensions: dims,
			BatchSize: c.Int("batch"), Timeout: c.Duration("embed-timeout")})
		if err != nil {
			return nil, cli.Exit(err.Error(), 2)
		}
		// Ask the model now: a missing model or a wrong --dims should fail before anything changes.
		ctx, cancel := context.WithTimeout(c.Context, c.Duration("embed-timeout"))
		defer cancel()
		if _, err := o.Embed(ctx, embed.Document, []string{"cairn reindex: model check"}); err != nil {
			return nil, cli.Exit(fmt.Sprintf("the new model cannot embed: %v", err), 1)
		}
		return o, nil
	default:
		return nil, cli.Exit(fmt.Sprintf("--embedder %q: use ollama or builtin", c.String("embedder")), 2)
	}
}

// reindexError gives the operator's errors (another reindex running, an unfinished one to
// another model) exit code 1 with their message alone.
func reindexError(err error) error {
	if callerr.Is(err) || errors.Is(err, knowledge.ErrUnavailable) {
		return cli.Exit(err.Error(), 1)
	}
	return err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
