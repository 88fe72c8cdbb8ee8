package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/knowledge"
)

// EmbedArgs queues a run of the knowledge graph's embed pipeline. The job names no rows: it
// embeds whatever is pending, batch by batch, so a burst of writes is embedded in a few calls
// however many jobs it queued, and jobs that find nothing left finish at once.
type EmbedArgs struct {
	// Sweep marks the periodic run: it is not retried, since the next sweep comes anyway.
	Sweep bool `json:"sweep,omitempty"`
}

// Kind names the job.
func (EmbedArgs) Kind() string { return "knowledge_embed" }

// InsertOpts puts the job in the embed queue.
func (EmbedArgs) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: EmbedQueueName} }

// EmbedQueueName is the queue embed jobs run in, apart from other jobs: a few runs at a time
// each claim full batches, where many would split every burst of writes into small embed calls
// (and a one-GPU Ollama answers one call at a time).
const EmbedQueueName = "knowledge_embed"

// Defaults of EmbedOptions.
const (
	DefaultEmbedSweep      = 10 * time.Second
	DefaultEmbedMaxBackoff = 10 * time.Second
	DefaultEmbedWorkers    = 2
)

// EmbedOptions configure the embed worker; zero values are the defaults.
type EmbedOptions struct {
	// Sweep is how often the leader queues a run that embeds rows no write queued a job for (raw
	// SQL inserts) and rows whose jobs gave up; default DefaultEmbedSweep.
	Sweep time.Duration
	// MaxBackoff caps the wait before a job tries again while the embedder fails; default
	// DefaultEmbedMaxBackoff. (The embedder's Guard probes it at most this far apart, and wakes
	// the jobs waiting on it as soon as it works.)
	MaxBackoff time.Duration
	// CallTimeout is the longest one embed call may take, the one that loads the model
	// included (the embedder's load timeout); the job's timeout leaves room for it. Default
	// embed.DefaultLoadTimeout.
	CallTimeout time.Duration
	// Workers is how many embed runs a process works at once; default DefaultEmbedWorkers.
	Workers int
	// Pipeline bounds each run (batch size, lease, time budget).
	Pipeline knowledge.EmbedOptions
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// EmbedWorker embeds pending knowledge rows.
type EmbedWorker struct {
	river.WorkerDefaults[EmbedArgs]
	store *knowledge.Store
	opts  EmbedOptions
}

// Work runs the pipeline. While the embedder fails, the job waits on it (the Guard wakes it as
// soon as a probe succeeds) and, past its budget, snoozes for MaxBackoff without using up an
// attempt, so a long outage discards nothing; the rows stay pending meanwhile. When the run's
// time budget ends with rows left it queues the next run itself.
func (w *EmbedWorker) Work(ctx context.Context, job *river.Job[EmbedArgs]) error {
	st, err := w.store.EmbedPending(ctx, w.opts.Pipeline)
	if st.Embedded+st.Failed+st.Stale > 0 {
		w.opts.Logger.Debug("embedded knowledge rows", "embedded", st.Embedded, "failed", st.Failed, "stale", st.Stale, "more", st.More)
	}
	if st.Failed > 0 {
		w.opts.Logger.Warn("knowledge rows cannot be embedded; knowledge_status lists why", "rows", st.Failed)
	}
	if err != nil && job.Args.Sweep {
		w.opts.Logger.Debug("embed sweep failed; the next sweep tries again", "err", err)
		return nil
	}
	if err != nil && embed.IsTransient(err) {
		// The Guard has said so in the log; rows stay pending and nothing is lost.
		w.opts.Logger.Debug("embedder unavailable; the job waits and tries again", "in", w.opts.MaxBackoff, "err", err)
		return river.JobSnooze(w.opts.MaxBackoff)
	}
	if err != nil {
		if job.Attempt == 1 || job.Attempt%5 == 0 {
			w.opts.Logger.Warn("embedding failed; retrying with backoff, nothing is lost", "attempt", job.Attempt, "err", err)
		}
		return err
	}
	if st.More {
		if _, err := river.ClientFromContext[pgx.Tx](ctx).Insert(ctx, EmbedArgs{}, nil); err != nil {
			return fmt.Errorf("queue the next embed run: %w", err)
		}
	}
	return nil
}

// NextRetry waits attempt⁴ seconds, as River does, but never more than MaxBackoff.
func (w *EmbedWorker) NextRetry(job *river.Job[EmbedArgs]) time.Time {
	d := time.Duration(math.Pow(float64(job.Attempt), 4)) * time.Second
	return time.Now().Add(min(d, w.opts.MaxBackoff))
}

// Timeout leaves room for the run's time budget plus one slow embed call.
func (w *EmbedWorker) Timeout(*river.Job[EmbedArgs]) time.Duration {
	return w.opts.Pipeline.Budget + w.opts.CallTimeout + time.Minute
}

// AddEmbedding registers the embed worker and the periodic sweep (run at start too). The store
// chooses the embedder of each kind.
func AddEmbedding(r *Registry, store *knowledge.Store, opts EmbedOptions) error {
	if opts.Sweep <= 0 {
		opts.Sweep = DefaultEmbedSweep
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultEmbedMaxBackoff
	}
	if opts.Pipeline.Budget <= 0 {
		opts.Pipeline.Budget = 20 * time.Second
	}
	if opts.Workers <= 0 {
		opts.Workers = DefaultEmbedWorkers
	}
	if opts.CallTimeout <= 0 {
		opts.CallTimeout = embed.DefaultLoadTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if err := r.AddQueue(EmbedQueueName, opts.Workers); err != nil {
		return err
	}
	w := &EmbedWorker{store: store, opts: opts}
	if err := AddWorker(r, w); err != nil {
		return err
	}
	r.AddTimeout(w.Timeout(nil))
	// Every process sweeps once at start: what a dead process left pending (or leased) is taken
	// over without waiting for the leader's next sweep, or for a dead leader's term to end.
	r.AddStartJob(EmbedArgs{Sweep: true})
	return r.AddPeriodic(opts.Sweep, func() (river.JobArgs, *river.InsertOpts) { return EmbedArgs{Sweep: true}, nil },
		&river.PeriodicJobOpts{RunOnStart: true})
}

// EmbedQueue queues embed runs in the writer's transaction; it is the knowledge.Queue of a Store.
type EmbedQueue struct{ Client *Client }

// EnqueueEmbed queues one run in tx.
func (q EmbedQueue) EnqueueEmbed(ctx context.Context, tx pgx.Tx) error {
	_, err := q.Client.InsertTx(ctx, tx, EmbedArgs{}, nil)
	return err
}
