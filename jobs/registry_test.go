package jobs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/cairn-mcp/cairn/jobs"
)

func TestRegistry(t *testing.T) {
	t.Parallel()
	noop := river.WorkFunc(func(context.Context, *river.Job[recordArgs]) error { return nil })
	construct := func() (river.JobArgs, *river.InsertOpts) { return recordArgs{}, nil }
	tests := []struct {
		name    string
		add     func(*jobs.Registry) error
		wantErr bool
	}{
		{name: "worker", add: func(r *jobs.Registry) error { return jobs.AddWorker(r, noop) }},
		{name: "second worker for a kind", add: func(r *jobs.Registry) error {
			jobs.AddWorker(r, noop)
			return jobs.AddWorker(r, noop)
		}, wantErr: true},
		{name: "periodic", add: func(r *jobs.Registry) error { return r.AddPeriodic(time.Minute, construct, nil) }},
		{name: "periodic with zero interval", add: func(r *jobs.Registry) error { return r.AddPeriodic(0, construct, nil) }, wantErr: true},
		{name: "periodic without constructor", add: func(r *jobs.Registry) error { return r.AddPeriodic(time.Minute, nil, nil) }, wantErr: true},
		{name: "queue", add: func(r *jobs.Registry) error { return r.AddQueue("slow", 2) }},
		{name: "queue without workers", add: func(r *jobs.Registry) error { return r.AddQueue("slow", 0) }, wantErr: true},
		{name: "the default queue", add: func(r *jobs.Registry) error { return r.AddQueue(river.QueueDefault, 2) }, wantErr: true},
	}
	for _, tc := range tests {
		if err := tc.add(jobs.NewRegistry()); (err != nil) != tc.wantErr {
			t.Errorf("%s: err = %v, want error %t", tc.name, err, tc.wantErr)
		}
	}

	r := jobs.NewRegistry()
	jobs.AddWorker(r, noop)
	jobs.AddWorker(r, river.WorkFunc(func(context.Context, *river.Job[slowArgs]) error { return nil }))
	r.AddPeriodic(time.Minute, construct, nil)
	if got, want := r.Kinds(), []string{"cairn_test_record", "cairn_test_slow"}; !slices.Equal(got, want) || r.NumPeriodic() != 1 {
		t.Errorf("Kinds() = %v, NumPeriodic() = %d; want %v, 1", got, r.NumPeriodic(), want)
	}
}
