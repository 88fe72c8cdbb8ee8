package jobs_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
)

// TestRetentionJobRuns: with a policy set, the periodic job prunes at start, through River.
func TestRetentionJobRuns(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if err := jobs.Migrate(ctx, db.Pool, nil); err != nil {
		t.Fatal(err)
	}
	store := checkpoint.New(db.Pool)
	w, err := store.Start(ctx, checkpoint.StartParams{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: []byte(fmt.Sprintf(`{"i": %d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	reg := jobs.NewRegistry()
	if err := jobs.AddRetention(reg, store, checkpoint.Retention{KeepLast: 2}, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	jc, err := jobs.Start(ctx, db.Pool, reg, jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer jc.Stop(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1`, w.ID).Scan(&n)
		if n == 2 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not run: %d checkpoints", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRetentionOffRegistersNothing(t *testing.T) {
	reg := jobs.NewRegistry()
	if err := jobs.AddRetention(reg, nil, checkpoint.Retention{}, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if len(reg.Kinds()) != 0 || reg.NumPeriodic() != 0 {
		t.Errorf("kinds %v, periodic %d", reg.Kinds(), reg.NumPeriodic())
	}
}
