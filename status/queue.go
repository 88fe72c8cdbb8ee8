package status

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/riverqueue/river/rivertype"

	"github.com/cairn-mcp/cairn/jobs"
)

// queue reports River's job queue, and the jobs that failed for good. Without River's tables it
// leaves the queue null: river_behind says why.
func (c *collector) queue(ctx context.Context) error {
	depth, err := jobs.QueueDepth(ctx, c.pool)
	switch {
	case errors.Is(err, jobs.ErrNoJobTables):
		return nil
	case err != nil:
		return err
	}
	s := depth.States
	q := &Queue{
		Available: s[rivertype.JobStateAvailable], Scheduled: s[rivertype.JobStateScheduled], Pending: s[rivertype.JobStatePending],
		Retryable: s[rivertype.JobStateRetryable], Running: s[rivertype.JobStateRunning], Completed: s[rivertype.JobStateCompleted],
		Cancelled: s[rivertype.JobStateCancelled], Discarded: s[rivertype.JobStateDiscarded],
		OldestAvailableSeconds: depth.OldestAvailable.Seconds(), Failing: depth.Failing,
	}
	if q.Failing == nil {
		q.Failing = []jobs.KindFailures{}
	}
	c.rep.Queue = q
	if q.Discarded > 0 {
		var kinds []string
		for _, f := range depth.Failing {
			if f.State == rivertype.JobStateDiscarded {
				kinds = append(kinds, fmt.Sprintf("%s ×%d", f.Kind, f.Jobs))
			}
		}
		c.rep.problem("jobs_discarded", false, "%d background job(s) failed for good (discarded): %s; River deletes them after a week", q.Discarded, strings.Join(kinds, ", "))
	}
	return nil
}
