package checkpoint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Statuses returns the workflow statuses, in the order a workflow usually passes through them.
func Statuses() []string {
	return []string{StatusPending, StatusRunning, StatusInterrupted, StatusCompleted, StatusFailed, StatusCancelled}
}

// Counts are how many workflows there are by status and how many checkpoints they keep.
type Counts struct {
	// Workflows counts workflows by status; every status of Statuses is present, zero included.
	Workflows   map[string]int64
	Checkpoints int64
}

// Counts counts workflows by status and their checkpoints, for operators' overviews. It only
// reads.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	c := Counts{Workflows: map[string]int64{}}
	for _, st := range Statuses() {
		c.Workflows[st] = 0
	}
	rows, err := s.pool.Query(ctx, countWorkflowsSQL)
	if err != nil {
		return Counts{}, fmt.Errorf("count workflows: %w", err)
	}
	var status string
	var n int64
	if _, err := pgx.ForEachRow(rows, []any{&status, &n}, func() error {
		c.Workflows[status] = n
		return nil
	}); err != nil {
		return Counts{}, fmt.Errorf("count workflows: %w", err)
	}
	if err := s.pool.QueryRow(ctx, countCheckpointsSQL).Scan(&c.Checkpoints); err != nil {
		return Counts{}, fmt.Errorf("count checkpoints: %w", err)
	}
	return c, nil
}
