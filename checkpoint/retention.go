package checkpoint

import (
	"context"
	"fmt"
	"time"
)

// Retention says which checkpoints to drop; zero values keep everything. The newest checkpoint
// of each (workflow, namespace) and every checkpoint of an interrupted workflow are always kept,
// and so is the event history.
type Retention struct {
	// KeepLast keeps only the newest N checkpoints of each (workflow, namespace).
	KeepLast int
	// MaxAge drops checkpoints older than this.
	MaxAge time.Duration
}

// Enabled reports whether the retention drops anything at all.
func (r Retention) Enabled() bool { return r.KeepLast > 0 || r.MaxAge > 0 }

// pruneBatch bounds one transaction of pruning, so it never holds locks for long.
const pruneBatch = 5000

// Prune applies the retention now, in batches, and returns how many checkpoints it deleted.
// Blobs no remaining checkpoint refers to are deleted with them.
func (s *Store) Prune(ctx context.Context, r Retention) (int, error) {
	if r.KeepLast < 0 || r.MaxAge < 0 {
		return 0, inputErrorf("retention: keep-last and max-age must not be negative")
	}
	if !r.Enabled() {
		return 0, nil
	}
	var maxAge *string
	if r.MaxAge > 0 {
		v := fmt.Sprintf("%d microseconds", r.MaxAge.Microseconds())
		maxAge = &v
	}
	total := 0
	for {
		var n int
		if err := s.pool.QueryRow(ctx, pruneSQL, r.KeepLast, maxAge, pruneBatch).Scan(&n); err != nil {
			return total, fmt.Errorf("prune checkpoints: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
