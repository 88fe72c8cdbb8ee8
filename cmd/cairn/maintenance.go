package main

import (
	"fmt"
	"log/slog"
	"slices"

	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/checkpoint"
)

func pruneCommand() *cli.Command {
	return &cli.Command{
		Name:  "prune",
		Usage: "apply retention now (what the periodic retention jobs do)",
		Description: `Deletes checkpoints beyond --checkpoint-keep-last per workflow and namespace, or older than
--checkpoint-max-age. The newest checkpoint of each workflow and namespace and every checkpoint of
an interrupted workflow are always kept, and so is the event history. With --execution-max-age,
also deletes older raw agent executions (agent_metrics keeps counting them from the rollups).

Examples:
   cairn prune --checkpoint-keep-last 50
   CAIRN_CHECKPOINT_MAX_AGE=720h CAIRN_EXECUTION_MAX_AGE=2160h cairn prune`,
		Flags: slices.Concat(retentionFlags, dbFlags),
		Action: func(c *cli.Context) error {
			policy, err := retentionFrom(c)
			if err != nil {
				return err
			}
			execAge := c.Duration("execution-max-age")
			if execAge < 0 {
				return cli.Exit("--execution-max-age must not be negative", 2)
			}
			if !policy.Enabled() && execAge == 0 {
				return cli.Exit("nothing to do: set --checkpoint-keep-last, --checkpoint-max-age or --execution-max-age (or CAIRN_CHECKPOINT_KEEP_LAST / CAIRN_CHECKPOINT_MAX_AGE / CAIRN_EXECUTION_MAX_AGE)", 2)
			}
			pool, err := openDB(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := backend.PrepareSchema(c.Context, pool, true, slog.Default()); err != nil {
				return err
			}
			n, err := checkpoint.New(pool).Prune(c.Context, policy)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "deleted %d checkpoint(s)\n", n)
			if execAge > 0 {
				n, err := agents.New(pool).PruneExecutions(c.Context, execAge)
				if err != nil {
					return err
				}
				fmt.Fprintf(c.App.Writer, "deleted %d agent execution(s)\n", n)
			}
			return nil
		},
	}
}

func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "rebuild-projections",
		Usage: "rebuild the workflow tables from the event history, in one transaction",
		Description: `Recomputes workflows, workflow_checkpoints, workflow_steps and checkpoint_writes from the
events (including raw SQL writes, which are recorded as events). Readers see the old tables until
it commits; writers wait for it.

Example:
   cairn rebuild-projections`,
		Flags: dbFlags,
		Action: func(c *cli.Context) error {
			pool, err := openDB(c)
			if err != nil {
				return err
			}
			defer pool.Close()
			if err := backend.PrepareSchema(c.Context, pool, true, slog.Default()); err != nil {
				return err
			}
			n, err := checkpoint.New(pool).Rebuild(c.Context)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "rebuilt the workflow projections from %d event(s)\n", n)
			return nil
		},
	}
}
