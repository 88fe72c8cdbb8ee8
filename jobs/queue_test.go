package jobs_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
)

func TestQueueDepthWithoutRiverTables(t *testing.T) {
	t.Parallel()
	db := testdb.New(t) // cairn's migrations only
	if _, err := jobs.QueueDepth(context.Background(), db.Pool); !errors.Is(err, jobs.ErrNoJobTables) {
		t.Fatalf("QueueDepth without River's tables = %v, want ErrNoJobTables", err)
	}
}

func TestQueueDepth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	type job struct {
		state, kind string
		// scheduled and attempted are ages (before now) of scheduled_at and attempted_at.
		scheduled, attempted time.Duration
		errors               []string
	}
	tests := []struct {
		name       string
		jobs       []job
		want       map[rivertype.JobState]int64 // states not named must be 0
		wantOldest time.Duration                // at least this, and less than a minute more
		wantFail   []jobs.KindFailures
	}{
		{name: "empty", want: map[rivertype.JobState]int64{}, wantFail: []jobs.KindFailures{}},
		{
			name: "every state",
			jobs: []job{
				{state: "available", kind: "a", scheduled: 90 * time.Second},
				{state: "available", kind: "a", scheduled: 10 * time.Second},
				{state: "scheduled", kind: "a", scheduled: -time.Hour},
				{state: "pending", kind: "a"},
				{state: "running", kind: "b", attempted: time.Second},
				{state: "completed", kind: "b", attempted: time.Minute},
				{state: "cancelled", kind: "b", attempted: time.Minute},
				{state: "retryable", kind: "embed", scheduled: -time.Minute, attempted: time.Minute, errors: []string{"ollama down"}},
				// Two discarded jobs of a kind: the last error shown is the newest attempt's, and
				// of that job the last attempt's.
				{state: "discarded", kind: "embed", attempted: time.Hour, errors: []string{"old first", "old last"}},
				{state: "discarded", kind: "embed", attempted: time.Minute, errors: []string{"new first", "new last"}},
				{state: "discarded", kind: "retention", attempted: time.Minute},
			},
			want: map[rivertype.JobState]int64{"available": 2, "scheduled": 1, "pending": 1, "running": 1, "completed": 1,
				"cancelled": 1, "retryable": 1, "discarded": 3},
			wantOldest: 90 * time.Second,
			wantFail: []jobs.KindFailures{
				{Kind: "embed", State: "discarded", Jobs: 2, LastError: "new last"},
				{Kind: "embed", State: "retryable", Jobs: 1, LastError: "ollama down"},
				{Kind: "retention", State: "discarded", Jobs: 1},
			},
		},
		{
			name:     "only scheduled work waits for nothing",
			jobs:     []job{{state: "scheduled", kind: "a", scheduled: -time.Hour}},
			want:     map[rivertype.JobState]int64{"scheduled": 1},
			wantFail: []jobs.KindFailures{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			db := migratedDB(t)
			for _, j := range tc.jobs {
				var errs []string
				for _, e := range j.errors {
					errs = append(errs, `{"at": "2026-01-01T00:00:00Z", "attempt": 1, "error": "`+e+`"}`)
				}
				_, err := db.Pool.Exec(ctx, `INSERT INTO river_job (state, kind, args, max_attempts, scheduled_at, attempted_at, finalized_at, errors)
					VALUES ($1::river_job_state, $2, '{}', 5, now() - $3::interval, now() - $4::interval,
						CASE WHEN $1 IN ('completed', 'cancelled', 'discarded') THEN now() END, $5::jsonb[])`,
					j.state, j.kind, j.scheduled, j.attempted, errs)
				if err != nil {
					t.Fatalf("insert %s job: %v", j.state, err)
				}
			}
			d, err := jobs.QueueDepth(ctx, db.Pool)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range rivertype.JobStates() {
				got, ok := d.States[s]
				if !ok || got != tc.want[s] {
					t.Errorf("States[%s] = %d (present %t), want %d", s, got, ok, tc.want[s])
				}
			}
			if len(d.States) != len(rivertype.JobStates()) {
				t.Errorf("States has %d entries, want one per River state: %v", len(d.States), d.States)
			}
			if d.OldestAvailable < tc.wantOldest || d.OldestAvailable > tc.wantOldest+time.Minute {
				t.Errorf("OldestAvailable = %s, want %s (+ up to a minute)", d.OldestAvailable, tc.wantOldest)
			}
			if len(d.Failing) != len(tc.wantFail) {
				t.Fatalf("Failing = %+v, want %+v", d.Failing, tc.wantFail)
			}
			for i := range d.Failing {
				if d.Failing[i] != tc.wantFail[i] {
					t.Errorf("Failing[%d] = %+v, want %+v", i, d.Failing[i], tc.wantFail[i])
				}
			}
		})
	}
}
