package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/cairn-mcp/cairn/jobs"
)

// recorder registers a worker for recordArgs that sends each job's name to the returned channel.
func recorder(t *testing.T, reg *jobs.Registry) <-chan string {
	t.Helper()
	ran := make(chan string, 100)
	err := jobs.AddWorker(reg, river.WorkFunc(func(ctx context.Context, job *river.Job[recordArgs]) error {
		ran <- job.Args.Name
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	return ran
}

func TestInsertTxRunsOnlyWhenCommitted(t *testing.T) {
	t.Parallel()
	db := migratedDB(t)
	ctx := context.Background()
	reg := jobs.NewRegistry()
	ran := recorder(t, reg)
	c := start(t, db, reg, jobs.Options{})

	insert := func(name string, commit bool) int64 {
		t.Helper()
		tx, err := db.Pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		res, err := c.InsertTx(ctx, tx, recordArgs{Name: name}, nil)
		if err != nil {
			t.Fatalf("InsertTx %s: %v", name, err)
		}
		if commit {
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		return res.Job.ID
	}
	rolledBack := insert("rolled-back", false)
	insert("committed", true)

	if got := receive(t, ran, 15*time.Second); got != "committed" {
		t.Fatalf("ran %q, want the committed job", got)
	}
	// The committed job ran after the rolled-back one was inserted: had that one survived, it
	// would be visible now.
	if _, err := c.River().JobGet(ctx, rolledBack); !errors.Is(err, river.ErrNotFound) {
		t.Errorf("job inserted in a rolled-back transaction: JobGet = %v, want not found", err)
	}
	select {
	case got := <-ran:
		t.Errorf("another job ran: %q", got)
	case <-time.After(500 * time.Millisecond):
	}
}

func TestInsertOutsideATransaction(t *testing.T) {
	t.Parallel()
	db := migratedDB(t)
	reg := jobs.NewRegistry()
	ran := recorder(t, reg)
	c := start(t, db, reg, jobs.Options{})
	if _, err := c.Insert(context.Background(), recordArgs{Name: "plain"}, nil); err != nil {
		t.Fatal(err)
	}
	if got := receive(t, ran, 15*time.Second); got != "plain" {
		t.Fatalf("ran %q, want plain", got)
	}
}

func TestPeriodicJobRuns(t *testing.T) {
	t.Parallel()
	db := migratedDB(t)
	reg := jobs.NewRegistry()
	ran := recorder(t, reg)
	tick := func() (river.JobArgs, *river.InsertOpts) { return recordArgs{Name: "tick"}, nil }
	if err := reg.AddPeriodic(time.Second, tick, &river.PeriodicJobOpts{ID: "test_tick", RunOnStart: true}); err != nil {
		t.Fatal(err)
	}
	start(t, db, reg, jobs.Options{})
	// Once at start, then once a second, on the client that wins the leader election.
	for range 2 {
		if got := receive(t, ran, 15*time.Second); got != "tick" {
			t.Fatalf("ran %q, want tick", got)
		}
	}
}

// slowArgs is a job whose worker takes its time and says whether it was cancelled.
type slowArgs struct{}

func (slowArgs) Kind() string { return "cairn_test_slow" }

func TestStop(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		work        time.Duration // how long the job runs unless cancelled
		stopTimeout time.Duration
		cancelled   bool
		state       string
		attempt     int
	}{
		{name: "job in flight finishes", work: 500 * time.Millisecond, stopTimeout: 10 * time.Second, state: "completed", attempt: 1},
		// River puts a job cancelled by a stop back in the queue without counting the attempt.
		{name: "job past the timeout is cancelled and requeued", work: time.Minute, stopTimeout: 300 * time.Millisecond, cancelled: true, state: "available", attempt: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := migratedDB(t)
			ctx := context.Background()
			started := make(chan struct{}, 1)
			finished := make(chan error, 1)
			reg := jobs.NewRegistry()
			err := jobs.AddWorker(reg, river.WorkFunc(func(ctx context.Context, job *river.Job[slowArgs]) error {
				started <- struct{}{}
				select {
				case <-time.After(tc.work):
					finished <- nil
					return nil
				case <-ctx.Done():
					finished <- ctx.Err()
					return ctx.Err()
				}
			}))
			if err != nil {
				t.Fatal(err)
			}
			c, err := jobs.Start(ctx, db.Pool, reg, jobs.Options{StopTimeout: tc.stopTimeout, Logger: quiet()})
			if err != nil {
				t.Fatal(err)
			}
			res, err := c.Insert(ctx, slowArgs{}, nil)
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-started:
			case <-time.After(15 * time.Second):
				t.Fatal("job did not start")
			}

			t0 := time.Now()
			sctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if err := c.Stop(sctx); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			took := time.Since(t0)
			if limit := min(tc.work, tc.stopTimeout) + 3*time.Second; took > limit {
				t.Errorf("Stop took %s, want under %s", took, limit)
			}
			select {
			case err := <-finished:
				if cancelled := err != nil; cancelled != tc.cancelled {
					t.Errorf("job returned %v; want cancelled=%t", err, tc.cancelled)
				}
			default:
				t.Fatal("Stop returned while the job was still running")
			}
			var state string
			var attempt int
			if err := db.Pool.QueryRow(ctx, "SELECT state, attempt FROM river_job WHERE id = $1", res.Job.ID).Scan(&state, &attempt); err != nil {
				t.Fatal(err)
			}
			if state != tc.state || attempt != tc.attempt {
				t.Errorf("job after Stop: state %s, attempt %d; want %s, %d", state, attempt, tc.state, tc.attempt)
			}
		})
	}
}

func TestStartWithNothingRegistered(t *testing.T) {
	t.Parallel()
	db := migratedDB(t)
	ctx := context.Background()
	c := start(t, db, jobs.NewRegistry(), jobs.Options{})
	// Queued for a process that has the worker.
	res, err := c.Insert(ctx, recordArgs{Name: "elsewhere"}, nil)
	if err != nil {
		t.Fatalf("Insert with no workers registered: %v", err)
	}
	if res.Job.State != "available" {
		t.Errorf("state = %s, want available", res.Job.State)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop of a client that works nothing: %v", err)
	}
}

func TestStartRefuses(t *testing.T) {
	t.Parallel()
	// Refused before River touches the database: this pool never connects.
	pool, err := pgxpool.New(context.Background(), "host=/nonexistent")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	tick := func() (river.JobArgs, *river.InsertOpts) { return recordArgs{}, nil }
	tests := []struct {
		name  string
		setup func(*jobs.Registry) error
		opts  jobs.Options
	}{
		{name: "periodic job without a worker", setup: func(r *jobs.Registry) error { return r.AddPeriodic(time.Hour, tick, nil) }},
		{name: "queue of zero workers", setup: func(r *jobs.Registry) error {
			return jobs.AddWorker(r, river.WorkFunc(func(context.Context, *river.Job[recordArgs]) error { return nil }))
		}, opts: jobs.Options{Queues: map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: 0}}}},
	}
	for _, tc := range tests {
		reg := jobs.NewRegistry()
		if err := tc.setup(reg); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		tc.opts.Logger = quiet()
		if c, err := jobs.Start(context.Background(), pool, reg, tc.opts); err == nil {
			c.Stop(context.Background())
			t.Errorf("%s: Start succeeded", tc.name)
		}
	}
}
