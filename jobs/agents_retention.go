package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-mcp/cairn/agents"
)

// ExecutionRetentionArgs queues one run of agent-execution retention.
type ExecutionRetentionArgs struct{}

// Kind names the job.
func (ExecutionRetentionArgs) Kind() string { return "agent_execution_retention" }

// ExecutionRetentionWorker deletes raw agent executions older than MaxAge
// (agents.Store.PruneExecutions); the hourly and daily rollups keep their figures.
type ExecutionRetentionWorker struct {
	river.WorkerDefaults[ExecutionRetentionArgs]
	Agents *agents.Store
	MaxAge time.Duration
	Logger *slog.Logger
}

// Work prunes; a failure is retried by River with its usual backoff.
func (w *ExecutionRetentionWorker) Work(ctx context.Context, _ *river.Job[ExecutionRetentionArgs]) error {
	n, err := w.Agents.PruneExecutions(ctx, w.MaxAge)
	if err != nil {
		return fmt.Errorf("agent execution retention: %w", err)
	}
	if n > 0 {
		w.Logger.Info("agent execution retention", "deleted", n, "max_age", w.MaxAge)
	}
	return nil
}

// AddExecutionRetention registers the worker and has the elected leader run it every interval,
// and once at start. A max age of 0 keeps every execution and registers nothing.
func AddExecutionRetention(r *Registry, store *agents.Store, maxAge, every time.Duration, log *slog.Logger) error {
	if maxAge < 0 {
		return fmt.Errorf("agent execution retention: max age %s must not be negative", maxAge)
	}
	if maxAge == 0 {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	if err := AddWorker(r, &ExecutionRetentionWorker{Agents: store, MaxAge: maxAge, Logger: log}); err != nil {
		return err
	}
	return r.AddPeriodic(every, func() (river.JobArgs, *river.InsertOpts) { return ExecutionRetentionArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
