package agents

import (
	"context"
	"fmt"
)

// Counts are how many agents are registered and how many raw executions are kept (retention may
// have pruned older ones; the rollups still count them).
type Counts struct {
	Agents     int64
	Executions int64
}

// Counts counts agents and kept executions, for operators' overviews. It only reads.
func (s *Store) Counts(ctx context.Context) (Counts, error) {
	var c Counts
	err := s.pool.QueryRow(ctx, countsSQL).Scan(&c.Agents, &c.Executions)
	if err != nil {
		return Counts{}, fmt.Errorf("count agents and executions: %w", err)
	}
	return c, nil
}
