package checkpoint

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Rebuild recomputes the workflow projections (workflows, workflow_checkpoints, workflow_steps,
// checkpoint_writes) from the event store in one transaction and returns how many events it
// applied. Readers see the old projections until it commits.
func (s *Store) Rebuild(ctx context.Context) (int64, error) {
	var n int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Writers wait rather than interleave with a rebuild.
		if _, err := tx.Exec(ctx, lockProjectionsSQL); err != nil {
			return err
		}
		return tx.QueryRow(ctx, rebuildSQL).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("rebuild workflow projections: %w", err)
	}
	return n, nil
}
