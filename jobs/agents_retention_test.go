package jobs_test

import (
	"context"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/jobs"
)

// TestExecutionRetentionJobRuns: with a max age set, the periodic job deletes old raw
// executions at start, through River, and leaves recent ones and the rollups.
func TestExecutionRetentionJobRuns(t *testing.T) {
	t.Parallel()
	db := migratedDB(t)
	ctx := context.Background()
	store := agents.New(db.Pool)
	if _, err := store.Register(ctx, agents.RegisterParams{AgentID: "a", Template: "researcher"}); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Time{time.Now().Add(-72 * time.Hour), time.Now().Add(-50 * time.Hour), {}} {
		if _, err := store.Record(ctx, agents.RecordParams{AgentID: "a", TokensIn: 10, DurationMS: 5, Outcome: "success", At: at}); err != nil {
			t.Fatal(err)
		}
	}
	reg := jobs.NewRegistry()
	if err := jobs.AddExecutionRetention(reg, store, 48*time.Hour, time.Hour, quiet()); err != nil {
		t.Fatal(err)
	}
	start(t, db, reg, jobs.Options{})
	deadline := time.Now().Add(30 * time.Second)
	for {
		var n int
		db.Pool.QueryRow(ctx, `SELECT count(*) FROM agent_executions`).Scan(&n)
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("retention did not run: %d executions", n)
		}
		time.Sleep(50 * time.Millisecond)
	}
	totals, err := store.Totals(ctx)
	if err != nil || len(totals) != 1 || totals[0].Executions != 3 || totals[0].Tokens != 30 {
		t.Fatalf("totals after retention = %+v, %v (the rollups must keep pruned executions)", totals, err)
	}
}

func TestExecutionRetentionOffRegistersNothing(t *testing.T) {
	reg := jobs.NewRegistry()
	if err := jobs.AddExecutionRetention(reg, nil, 0, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if len(reg.Kinds()) != 0 || reg.NumPeriodic() != 0 {
		t.Errorf("kinds %v, periodic %d", reg.Kinds(), reg.NumPeriodic())
	}
	if err := jobs.AddExecutionRetention(reg, nil, -time.Hour, time.Hour, nil); err == nil {
		t.Error("a negative max age should be refused")
	}
}
