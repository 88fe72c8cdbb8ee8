package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-mcp/cairn/checkpoint"
)

// RetentionArgs queues one run of checkpoint retention.
type RetentionArgs struct{}

// Kind names the job.
func (RetentionArgs) Kind() string { return "checkpoint_retention" }

// RetentionWorker applies the checkpoint retention policy (checkpoint.Store.Prune).
type RetentionWorker struct {
	river.WorkerDefaults[RetentionArgs]
	Checkpoints *checkpoint.Store
	Policy      checkpoint.Retention
	Logger      *slog.Logger
}

// Work prunes; a failure is retried by River with its usual backoff.
func (w *RetentionWorker) Work(ctx context.Context, _ *river.Job[RetentionArgs]) error {
	n, err := w.Checkpoints.Prune(ctx, w.Policy)
	if err != nil {
		return fmt.Errorf("checkpoint retention: %w", err)
	}
	if n > 0 {
		w.Logger.Info("checkpoint retention", "deleted", n, "keep_last", w.Policy.KeepLast, "max_age", w.Policy.MaxAge)
	}
	return nil
}

// AddRetention registers the retention worker and has the elected leader run it every interval,
// and once at start. A policy that keeps everything registers nothing.
func AddRetention(r *Registry, store *checkpoint.Store, policy checkpoint.Retention, every time.Duration, log *slog.Logger) error {
	if !policy.Enabled() {
		return nil
	}
	if log == nil {
		log = slog.Default()
	}
	if err := AddWorker(r, &RetentionWorker{Checkpoints: store, Policy: policy, Logger: log}); err != nil {
		return err
	}
	return r.AddPeriodic(every, func() (river.JobArgs, *river.InsertOpts) { return RetentionArgs{}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}
