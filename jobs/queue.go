package jobs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river/rivertype"
)

// Querier is what QueueDepth reads through: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Depth is River's job table at a glance: what waits, what runs and what failed.
type Depth struct {
	// States counts jobs by River state; every state of rivertype.JobStates is present, zero
	// included, so that readers need not tell "none" from "not reported".
	States map[rivertype.JobState]int64
	// OldestAvailable is how long the longest-waiting available job has been due, measured by
	// the database's clock; 0 when none waits.
	OldestAvailable time.Duration
	// Failing are the retryable and discarded jobs grouped by kind and state, most jobs first.
	Failing []KindFailures
}

// KindFailures counts the jobs of one kind in one failing state (retryable or discarded), with
// the error of the most recently attempted of them.
type KindFailures struct {
	Kind      string             `json:"kind"`
	State     rivertype.JobState `json:"state"`
	Jobs      int64              `json:"jobs"`
	LastError string             `json:"last_error,omitempty"`
}

// ErrNoJobTables says River's tables are missing: the database was migrated by cairn's own
// migrations only, or not at all.
var ErrNoJobTables = errors.New("the job tables (River's) do not exist: run `cairn migrate`")

// QueueDepth counts River's jobs by state, measures how long the oldest available job has
// waited, and groups the failing jobs by kind. It only reads. Without River's tables it returns
// ErrNoJobTables.
func QueueDepth(ctx context.Context, q Querier) (Depth, error) {
	var exists bool
	if err := q.QueryRow(ctx, jobTablesExistSQL).Scan(&exists); err != nil {
		return Depth{}, fmt.Errorf("queue depth: look up river_job: %w", err)
	}
	if !exists {
		return Depth{}, ErrNoJobTables
	}
	d := Depth{States: make(map[rivertype.JobState]int64, len(rivertype.JobStates()))}
	for _, s := range rivertype.JobStates() {
		d.States[s] = 0
	}
	rows, err := q.Query(ctx, jobsByStateSQL)
	if err != nil {
		return Depth{}, fmt.Errorf("queue depth: count jobs by state: %w", err)
	}
	var state string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&state, &n}, func() error {
		d.States[rivertype.JobState(state)] = n
		return nil
	}); err != nil {
		return Depth{}, fmt.Errorf("queue depth: count jobs by state: %w", err)
	}
	// Computed by the database: its clock set scheduled_at, and the host's may differ.
	var oldestMS float64
	if err := q.QueryRow(ctx, oldestAvailableSQL).Scan(&oldestMS); err != nil {
		return Depth{}, fmt.Errorf("queue depth: oldest available job: %w", err)
	}
	d.OldestAvailable = max(time.Duration(oldestMS)*time.Millisecond, 0)
	rows, err = q.Query(ctx, failingSQL)
	if err != nil {
		return Depth{}, fmt.Errorf("queue depth: failing jobs: %w", err)
	}
	d.Failing, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (KindFailures, error) {
		var f KindFailures
		var st string
		err := r.Scan(&f.Kind, &st, &f.Jobs, &f.LastError)
		f.State = rivertype.JobState(st)
		return f, err
	})
	if err != nil {
		return Depth{}, fmt.Errorf("queue depth: failing jobs: %w", err)
	}
	return d, nil
}
