package agents_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

func newStore(t *testing.T) (*agents.Store, *testdb.DB) {
	t.Helper()
	db := testdb.New(t)
	return agents.New(db.Pool), db
}

func TestRegisterUpdateAndHistory(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()

	a, err := s.Register(ctx, agents.RegisterParams{AgentID: "agent-abc123", Name: "r1", Template: "researcher", Metadata: json.RawMessage(`{"team":"search"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if a.State != "registered" || a.Template != "researcher" || a.TokensUsed != 0 {
		t.Fatalf("registered = %+v", a)
	}
	anon, err := s.Register(ctx, agents.RegisterParams{Template: "coder"})
	if err != nil || len(anon.AgentID) != 36 {
		t.Fatalf("register without id = %+v, %v", anon, err)
	}
	_, err = s.Register(ctx, agents.RegisterParams{AgentID: "agent-abc123", Template: "researcher"})
	var ie *callerr.Input
	if !errors.As(err, &ie) || !strings.Contains(err.Error(), "exists already") {
		t.Fatalf("duplicate register: %v", err)
	}

	state := "running"
	tokens := int64(42)
	a, err = s.Update(ctx, agents.UpdateParams{AgentID: "agent-abc123", State: &state, TokensUsed: &tokens, Metadata: json.RawMessage(`{"step":2}`)})
	if err != nil || a.State != "running" || a.TokensUsed != 42 {
		t.Fatalf("update = %+v, %v", a, err)
	}
	var meta map[string]any
	json.Unmarshal(a.Metadata, &meta)
	if meta["team"] != "search" || fmt.Sprint(meta["step"]) != "2" {
		t.Errorf("metadata not merged: %s", a.Metadata)
	}
	var nf *agents.NotFoundError
	if _, err := s.Update(ctx, agents.UpdateParams{AgentID: "ghost", State: &state}); !errors.As(err, &nf) {
		t.Errorf("update of a missing agent: %v", err)
	}

	// Raw SQL, as the predecessor writes it: the paired columns follow, and the write is an event.
	if _, err := db.Pool.Exec(ctx, `UPDATE agents SET status = $1 WHERE agent_id = $2`, "completed", "agent-abc123"); err != nil {
		t.Fatal(err)
	}
	var st, status, tmpl, tmplName string
	db.Pool.QueryRow(ctx, `SELECT state, status, template, template_name FROM agents WHERE agent_id = 'agent-abc123'`).Scan(&st, &status, &tmpl, &tmplName)
	if st != "completed" || status != "completed" || tmpl != "researcher" || tmplName != "researcher" {
		t.Errorf("after raw status update: state %q status %q template %q template_name %q", st, status, tmpl, tmplName)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE agents SET template_name = $1 WHERE agent_id = $2`, "analyst", "agent-abc123"); err != nil {
		t.Fatal(err)
	}
	a, _ = s.Get(ctx, "agent-abc123")
	if a.Template != "analyst" || a.State != "completed" {
		t.Errorf("after raw template_name update: %+v", a)
	}
	if _, err := db.Pool.Exec(ctx, `UPDATE agents SET state = 'a', status = 'b' WHERE agent_id = 'agent-abc123'`); err == nil {
		t.Error("setting state and status to different values should fail")
	}
	if _, err := db.Pool.Exec(ctx, `INSERT INTO agents (agent_id, template_name, status) VALUES ('raw-1', 'coder', 'idle')`); err != nil {
		t.Fatal(err)
	}
	raw, _ := s.Get(ctx, "raw-1")
	if raw.Template != "coder" || raw.State != "idle" {
		t.Errorf("raw insert = %+v", raw)
	}

	evs, err := s.History(ctx, "agent-abc123", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if fmt.Sprint(types) != "[AgentRegistered AgentUpdated RawRowWritten RawRowWritten]" {
		t.Errorf("history = %v", types)
	}
	if !strings.Contains(string(evs[2].Data), `"status": "completed"`) {
		t.Errorf("raw write event = %s", evs[2].Data)
	}

	list, err := s.List(ctx, agents.ListParams{Template: "coder"})
	if err != nil || len(list) != 2 {
		t.Errorf("list coder = %+v, %v", list, err)
	}
	list, _ = s.List(ctx, agents.ListParams{State: "idle"})
	if len(list) != 1 || list[0].AgentID != "raw-1" {
		t.Errorf("list idle = %+v", list)
	}
}

func TestRecordIdempotentAndConcurrent(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	if _, err := s.Register(ctx, agents.RegisterParams{AgentID: "a", Template: "researcher"}); err != nil {
		t.Fatal(err)
	}
	p := agents.RecordParams{AgentID: "a", TokensIn: 100, TokensOut: 50, DurationMS: 1200, CostUSD: 0.01, Outcome: "success", IdempotencyKey: "run-1"}
	first, err := s.Record(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Record(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || first.Duplicate || again.ExecutionID != first.ExecutionID || again.AgentTokensUsed != 150 || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("retry = %+v, first = %+v", again, first)
	}

	const writers, each = 20, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				_, err := s.Record(ctx, agents.RecordParams{AgentID: "a", TokensIn: int64(w + 1), TokensOut: int64(i), DurationMS: 10, Outcome: "success"})
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	want := int64(150)
	for w := range writers {
		for i := range each {
			want += int64(w+1) + int64(i)
		}
	}
	a, _ := s.Get(ctx, "a")
	var execs, sum, rolled int64
	db.Pool.QueryRow(ctx, `SELECT count(*), sum(tokens_used) FROM agent_executions WHERE agent_id = 'a'`).Scan(&execs, &sum)
	db.Pool.QueryRow(ctx, `SELECT sum(tokens_used) FROM agent_stats_hourly`).Scan(&rolled)
	if a.TokensUsed != want || execs != writers*each+1 || sum != want || rolled != want {
		t.Fatalf("tokens_used %d, executions %d, their sum %d, rollup %d; want %d", a.TokensUsed, execs, sum, rolled, want)
	}

	for _, bad := range []agents.RecordParams{
		{AgentID: "a", Outcome: "exploded"},
		{AgentID: "a", Outcome: "success", TokensIn: -1},
		{AgentID: "a", Outcome: "success", DurationMS: -5},
		{AgentID: "a", Outcome: "success", CostUSD: -1},
		{AgentID: "", Outcome: "success"},
	} {
		var ie *callerr.Input
		if _, err := s.Record(ctx, bad); !errors.As(err, &ie) {
			t.Errorf("%+v: want an callerr.Input, got %v", bad, err)
		}
	}
	var nf *agents.NotFoundError
	if _, err := s.Record(ctx, agents.RecordParams{AgentID: "ghost", Outcome: "success"}); !errors.As(err, &nf) {
		t.Errorf("record for a missing agent: %v", err)
	}
}

func TestMetricsBucketsTimeZonesAndRetention(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for _, id := range []string{"r1", "r2"} {
		if _, err := s.Register(ctx, agents.RegisterParams{AgentID: id, Template: "researcher"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Register(ctx, agents.RegisterParams{AgentID: "c1", Template: "coder"}); err != nil {
		t.Fatal(err)
	}
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	// Day 1 (2026-11-10) 23:30 UTC and day 2 00:30 UTC: one hour apart, different UTC days.
	recs := []agents.RecordParams{
		{AgentID: "r1", TokensIn: 100, TokensOut: 10, DurationMS: 100, CostUSD: 0.5, Outcome: "success", At: at("2026-11-10T23:30:00Z")},
		{AgentID: "r2", TokensIn: 200, TokensOut: 20, DurationMS: 300, CostUSD: 0.25, Outcome: "failure", Error: "boom", At: at("2026-11-10T23:45:00Z")},
		{AgentID: "r1", TokensIn: 1000, TokensOut: 0, DurationMS: 2000, CostUSD: 1, Outcome: "success", At: at("2026-11-11T00:30:00Z")},
		{AgentID: "r1", TokensIn: 1, TokensOut: 1, DurationMS: 50, Outcome: "timeout", At: at("2026-11-11T00:40:00+00:00")},
		// Day 4: day 3 stays empty.
		{AgentID: "r2", TokensIn: 5, TokensOut: 5, DurationMS: 1000, Outcome: "cancelled", At: at("2026-11-13T12:00:00+05:30")}, // 06:30Z
		{AgentID: "c1", TokensIn: 9999, TokensOut: 1, DurationMS: 1, Outcome: "success", At: at("2026-11-11T00:10:00Z")},
	}
	for _, r := range recs {
		if _, err := s.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}

	type row struct {
		start string
		execs int64
		toks  int64
		cost  float64
		rate  float64 // -1: null
	}
	check := func(name string, p agents.MetricsParams, want []row, wantTotal row) *agents.Metrics {
		t.Helper()
		m, err := s.Metrics(ctx, p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(m.Series) != len(want) {
			t.Fatalf("%s: %d buckets, want %d: %+v", name, len(m.Series), len(want), m.Series)
		}
		for i, w := range want {
			g := m.Series[i]
			rate := -1.0
			if g.SuccessRate != nil {
				rate = *g.SuccessRate
			}
			if g.Start.Format(time.RFC3339) != w.start || g.Executions != w.execs || g.Tokens != w.toks || math.Abs(g.CostUSD-w.cost) > 1e-9 || math.Abs(rate-w.rate) > 1e-9 {
				t.Errorf("%s bucket %d = {%s %d %d %v %v}, want %+v", name, i, g.Start.Format(time.RFC3339), g.Executions, g.Tokens, g.CostUSD, rate, w)
			}
		}
		if m.Totals.Executions != wantTotal.execs || m.Totals.Tokens != wantTotal.toks || math.Abs(m.Totals.CostUSD-wantTotal.cost) > 1e-9 {
			t.Errorf("%s totals = %+v, want %+v", name, m.Totals, wantTotal)
		}
		return m
	}

	// Days of the researcher template; since given as +05:30 is 2026-11-10T22:30Z, so the series
	// starts on the 10th (read naively as UTC it would start on the 11th).
	m := check("researcher by day", agents.MetricsParams{Template: "researcher", Bucket: "day",
		Since: at("2026-11-11T04:00:00+05:30"), Until: at("2026-11-13T23:59:00Z")},
		[]row{
			{"2026-11-10T00:00:00Z", 2, 330, 0.75, 0.5},
			{"2026-11-11T00:00:00Z", 2, 1002, 1, 0.5},
			{"2026-11-12T00:00:00Z", 0, 0, 0, -1},
			{"2026-11-13T00:00:00Z", 1, 10, 0, 0},
		}, row{execs: 5, toks: 1342, cost: 1.75})
	if m.Since.Format(time.RFC3339) != "2026-11-10T00:00:00Z" || m.Until.Format(time.RFC3339) != "2026-11-14T00:00:00Z" || m.TimeZone != "UTC" {
		t.Errorf("range = %s .. %s %s", m.Since, m.Until, m.TimeZone)
	}
	if m.Series[2].P50DurationMS != nil {
		t.Errorf("empty bucket has a p50: %v", *m.Series[2].P50DurationMS)
	}
	// A bucket with one duration per bin: percentiles clamp to the observed values exactly.
	if d := m.Series[0]; d.P50DurationMS == nil || d.Failures != 1 || d.Successes != 1 {
		t.Errorf("day 1 = %+v", d)
	}

	// Hours around midnight for agent r1 only; since 23:10Z rounds down to 23:00.
	check("r1 by hour", agents.MetricsParams{AgentID: "r1", Bucket: "hour", Since: at("2026-11-10T23:10:00Z"), Until: at("2026-11-11T02:00:00Z")},
		[]row{
			{"2026-11-10T23:00:00Z", 1, 110, 0.5, 1},
			{"2026-11-11T00:00:00Z", 2, 1002, 1, 0.5},
			{"2026-11-11T01:00:00Z", 0, 0, 0, -1},
		}, row{execs: 3, toks: 1112, cost: 1.5})
	// Every template, hour 00:00Z of the 11th, given in a negative offset.
	check("all by hour", agents.MetricsParams{Bucket: "hour", Since: at("2026-11-10T19:00:00-05:00"), Until: at("2026-11-10T20:00:00-05:00")},
		[]row{{"2026-11-11T00:00:00Z", 3, 11002, 1, 2.0 / 3}}, row{execs: 3, toks: 11002, cost: 1})

	// Percentiles over a spread of durations, against the exact values within the stated bound.
	if _, err := s.Register(ctx, agents.RegisterParams{AgentID: "p", Template: "perc"}); err != nil {
		t.Fatal(err)
	}
	var durs []float64
	for i := 1; i <= 200; i++ {
		d := int64(i * i) // 1 .. 40,000 ms, skewed
		durs = append(durs, float64(d))
		if _, err := s.Record(ctx, agents.RecordParams{AgentID: "p", DurationMS: d, Outcome: "success", At: at("2026-11-12T10:00:00Z")}); err != nil {
			t.Fatal(err)
		}
	}
	pm, err := s.Metrics(ctx, agents.MetricsParams{Template: "perc", Bucket: "day", Since: at("2026-11-12T00:00:00Z"), Until: at("2026-11-13T00:00:00Z")})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		got   *float64
		exact float64
	}{{pm.Totals.P50DurationMS, exactPercentile(durs, 0.5)}, {pm.Totals.P95DurationMS, exactPercentile(durs, 0.95)}} {
		if c.got == nil || math.Abs(*c.got-c.exact)/c.exact > 0.0905 {
			t.Errorf("percentile %v, exact %v: more than 9.05%% off", c.got, c.exact)
		}
	}

	totals, err := s.Totals(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byT := map[string]agents.TemplateTotals{}
	for _, tt := range totals {
		byT[tt.Template] = tt
	}
	if r := byT["researcher"]; r.Executions != 5 || r.Tokens != 1342 || r.Failures != 3 || math.Abs(r.CostUSD-1.75) > 1e-9 {
		t.Errorf("researcher totals = %+v", r)
	}

	// Retention drops raw executions (here: everything older than a day, so all of them) and
	// keeps the rollups: metrics do not change.
	n, err := s.PruneExecutions(ctx, 24*time.Hour)
	if err != nil || n != len(recs)+200 {
		t.Fatalf("pruned %d, %v", n, err)
	}
	check("researcher by day after retention", agents.MetricsParams{Template: "researcher", Bucket: "day",
		Since: at("2026-11-10T00:00:00Z"), Until: at("2026-11-11T00:00:00Z")},
		[]row{{"2026-11-10T00:00:00Z", 2, 330, 0.75, 0.5}}, row{execs: 2, toks: 330, cost: 0.75})

	for _, bad := range []agents.MetricsParams{
		{},
		{Bucket: "week"},
		{Bucket: "hour", Since: at("2026-01-01T00:00:00Z"), Until: at("2026-11-01T00:00:00Z")},
		{Bucket: "day", Since: at("2026-11-02T00:00:00Z"), Until: at("2026-11-01T00:00:00Z")},
		{Bucket: "day", Template: "no-such-template"},
	} {
		var ie *callerr.Input
		if _, err := s.Metrics(ctx, bad); !errors.As(err, &ie) {
			t.Errorf("%+v: want an callerr.Input, got %v", bad, err)
		}
	}
	var nf *agents.NotFoundError
	if _, err := s.Metrics(ctx, agents.MetricsParams{Bucket: "day", AgentID: "ghost"}); !errors.As(err, &nf) {
		t.Errorf("metrics of a missing agent: %v", err)
	}
}

// exactPercentile is PostgreSQL's percentile_cont over sorted values.
func exactPercentile(sorted []float64, p float64) float64 {
	r := p * float64(len(sorted)-1)
	k := int(math.Floor(r))
	if k+1 >= len(sorted) {
		return sorted[k]
	}
	return sorted[k] + (r-float64(k))*(sorted[k+1]-sorted[k])
}
