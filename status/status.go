// Package status checks the health of a cairn deployment without changing anything — where the
// database is and whether it answers, its schema and River's against this cairn's, the embedder
// and the models of the graph's vectors, the job queue, counts per domain, the workflows waiting
// on a human — and returns it as a Report, for `cairn status`.
package status

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/migrations"
)

// interruptedShown is how many interrupted workflows the report lists.
const interruptedShown = 5

// Options say what to check and how.
type Options struct {
	// Config holds the connection settings, normalized; without a database configured the
	// embedded cluster in DataDir is checked (never started).
	Config  *config.Config
	DataDir string
	// Embed chooses the embedder as serve would (its Dimensions are set from the graph's columns).
	Embed embed.Options
	// ProbeTimeout bounds each question to Ollama.
	ProbeTimeout time.Duration
	// Version is this cairn's, reported as cairn_version.
	Version string
	Logger  *slog.Logger // default slog.Default()
}

// Collect checks what Options name and returns the report, with Healthy set. What it finds wrong,
// including a query that fails, is a Problem of the report; the error is for bad settings only
// (connection settings, embedder flags), for which there is no report.
func Collect(ctx context.Context, opts Options) (*Report, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	rep := &Report{Problems: []Problem{}, Warnings: []string{}, CheckedAt: time.Now().UTC().Truncate(time.Millisecond),
		CairnVersion: opts.Version, Database: Database{SchemaLatest: migrations.Latest(), SchemaPending: []int{}, RiverPending: []int{}}}
	pool, err := connect(ctx, opts, rep)
	if err != nil {
		return nil, err
	}
	if pool != nil {
		defer pool.Close()
		c := &collector{opts: opts, pool: pool, rep: rep}
		if err := c.collect(ctx); err != nil {
			if se, ok := errors.AsType[settingsError](err); ok {
				return nil, se.error
			}
			rep.problem("query_failed", true, "%v", err)
		}
	}
	rep.Healthy = len(rep.Problems) == 0
	return rep, nil
}

// settingsError marks an error of the settings (exit 2) among those of the queries (a problem of
// the report).
type settingsError struct{ error }
