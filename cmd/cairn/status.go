package main

import (
	"fmt"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/status"
)

func statusCommand() *cli.Command {
	// Only the flags that choose the embedder: the batch, timeout and sweep settings of
	// serve/worker do not change which embedder that is.
	var embedChoice []cli.Flag
	for _, f := range embedFlags {
		if n := f.Names()[0]; n == "embedder" || n == "embed-model" || n == "ollama-host" {
			embedChoice = append(embedChoice, f)
		}
	}
	return &cli.Command{
		Name:  "status",
		Usage: "report the health of cairn's database, embedder and job queue (exit 0 healthy, 1 unreachable, 3 degraded)",
		Description: `Checks, without changing anything: whether the database answers and where it is, the
PostgreSQL and pgvector versions, cairn's and River's migrations, the embedder the --embedder
flags choose (as serve does; Ollama is probed within --probe-timeout) and the model of the
graph's vectors, the job queue, counts per domain, and the workflows waiting on a human.

It never migrates, and never starts the embedded cluster: with no database configured it
reports whether that cluster runs (` + "`cairn db start`" + ` starts it).

Exit codes:
   0  healthy
   1  the database is unreachable (or the embedded cluster is stopped), or a query failed
   2  bad flags or connection settings
   3  reachable but degraded: schema or River migrations behind (or newer than this cairn),
      pgvector missing, the embedder unreachable or unusable, discarded jobs, failed embeddings

--json prints one object, also when exiting 1 or 3; its keys are stable:
   healthy (bool), problems [{code, message}], warnings [string], checked_at, cairn_version
   database: reachable, target, error, embedded {data_dir, initialized, running} (only when no
     database is configured), postgres_version, pgvector ("" when not installed),
     pgvector_available, schema_version, schema_latest, schema_pending [int], river_pending [int],
     role (the role cairn connects as), superuser (a warning says so, except on the embedded cluster)
   embedder (null without the knowledge graph): requested, provider, model, dimensions, label,
     why (the embedder the flags choose), ollama [{host, model, ok, error}] (each Ollama model
     probed), column_dimensions, recorded {entity, episode} (the model each kind is embedded
     with, "" before its first vector), graph_model, graph_models [{kind, model, rows}],
     other_model_rows
   queue (null without River's tables): available, scheduled, pending, retryable, running,
     completed, cancelled, discarded, oldest_available_seconds, failing [{kind, state, jobs, last_error}]
   counts: workflows {status: n}, workflows_total, checkpoints, agents, executions, entities,
     episodes, relations, embeddings_pending, embeddings_failed (null where the tables are missing)
   interrupted: count, recent [{id, name, reason, interrupted_at}] (most recently updated first)
   embedder, queue, counts and interrupted are null when the database is unreachable.
Problem codes: database_unreachable, embedded_cluster_stopped, query_failed (exit 1);
schema_behind, schema_ahead, river_behind, pgvector_missing, embedder_unreachable,
embedder_misconfigured, jobs_discarded, embeddings_failed (exit 3).

Examples:
   cairn status
   cairn status --json | jq .queue
   cairn status --embedder ollama --probe-timeout 5s || echo "needs attention: $?"`,
		Flags: slices.Concat([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (keys documented above) instead of the report"},
			&cli.DurationFlag{Name: "probe-timeout", Value: embed.DefaultProbeTimeout, Usage: "longest to wait for Ollama to answer"},
		}, embedChoice, dbFlags),
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	probe := c.Duration("probe-timeout")
	if probe <= 0 {
		return cli.Exit("--probe-timeout must be positive", 2)
	}
	cfg := configFrom(c)
	if err := cfg.Normalize(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	rep, err := status.Collect(c.Context, status.Options{Config: cfg, DataDir: c.String("data-dir"), Embed: embedOptions(c),
		ProbeTimeout: probe, Version: cairnVersion()})
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	if c.Bool("json") {
		if err := writeJSON(c.App.Writer, rep); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
	} else {
		rep.WriteText(c.App.Writer)
	}
	if code := rep.ExitCode(); code != status.ExitHealthy {
		// The report said why; a message here would only repeat it on stderr.
		return cli.Exit("", code)
	}
	return nil
}
