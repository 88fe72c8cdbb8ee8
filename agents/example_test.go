package agents_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/cairn-mcp/cairn/agents"
)

// An agent framework registers each agent, records every execution with its tokens, duration,
// cost and outcome, and reads metrics per template from the rollups.
func Example() {
	ctx := context.Background()
	store := agents.New(examplePool())

	a, err := store.Register(ctx, agents.RegisterParams{AgentID: "researcher-1", Name: "Ada", Template: "researcher"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.AgentID, a.Template, a.State)

	running := "running"
	if _, err := store.Update(ctx, agents.UpdateParams{AgentID: a.AgentID, State: &running}); err != nil {
		log.Fatal(err)
	}

	// At backdates the executions, here to one UTC day; a live agent leaves it zero (now).
	day := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	runs := []agents.RecordParams{
		{TokensIn: 1200, TokensOut: 300, DurationMS: 4000, CostUSD: 0.015, Outcome: agents.OutcomeSuccess},
		{TokensIn: 800, TokensOut: 200, DurationMS: 2000, CostUSD: 0.01, Outcome: agents.OutcomeSuccess},
		{TokensIn: 500, TokensOut: 0, DurationMS: 30000, CostUSD: 0.005, Outcome: agents.OutcomeTimeout},
	}
	for i, r := range runs {
		r.AgentID, r.At = a.AgentID, day.Add(time.Duration(9+i)*time.Hour)
		rec, err := store.Record(ctx, r)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("agent tokens after execution:", rec.AgentTokensUsed)
	}

	a, err = store.Get(ctx, a.AgentID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.AgentID, a.State, a.TokensUsed)

	m, err := store.Metrics(ctx, agents.MetricsParams{Template: "researcher", Bucket: agents.BucketDay, Since: day, Until: day.Add(24 * time.Hour)})
	if err != nil {
		log.Fatal(err)
	}
	t := m.Totals
	fmt.Printf("%s on %s: executions=%d succeeded=%d timed_out=%d tokens=%d cost=$%.3f success_rate=%.2f avg_duration=%.0fms\n",
		m.Template, m.Series[0].Start.Format(time.DateOnly), t.Executions, t.Successes, t.Timeouts, t.Tokens, t.CostUSD, *t.SuccessRate, *t.AvgDurationMS)
	// Output:
	// researcher-1 researcher registered
	// agent tokens after execution: 1500
	// agent tokens after execution: 2500
	// agent tokens after execution: 3000
	// researcher-1 running 3000
	// researcher on 2026-03-02: executions=3 succeeded=2 timed_out=1 tokens=3000 cost=$0.030 success_rate=0.67 avg_duration=12000ms
}

// Totals are every template's all-time figures, cheap enough for a metrics scrape.
func ExampleStore_Totals() {
	ctx := context.Background()
	store := agents.New(examplePool())

	for _, a := range []agents.RegisterParams{{AgentID: "coder-1", Template: "coder"}, {AgentID: "reviewer-1", Template: "reviewer"}} {
		if _, err := store.Register(ctx, a); err != nil {
			log.Fatal(err)
		}
	}
	for _, r := range []agents.RecordParams{
		{AgentID: "coder-1", TokensIn: 900, TokensOut: 100, DurationMS: 5000, CostUSD: 0.02, Outcome: agents.OutcomeSuccess},
		{AgentID: "coder-1", TokensIn: 400, TokensOut: 0, DurationMS: 1000, CostUSD: 0.01, Outcome: agents.OutcomeFailure, Error: "tests failed"},
		{AgentID: "reviewer-1", TokensIn: 300, TokensOut: 50, DurationMS: 800, CostUSD: 0.004, Outcome: agents.OutcomeSuccess},
	} {
		if _, err := store.Record(ctx, r); err != nil {
			log.Fatal(err)
		}
	}

	totals, err := store.Totals(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, t := range totals {
		fmt.Printf("%s: executions=%d failed=%d tokens=%d cost=$%.3f\n", t.Template, t.Executions, t.Failures, t.Tokens, t.CostUSD)
	}
	// Output:
	// coder: executions=2 failed=1 tokens=1400 cost=$0.030
	// reviewer: executions=1 failed=0 tokens=350 cost=$0.004
}
