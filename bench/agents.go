package main

// The agents benchmarks of issue 4: how fast executions are recorded through the Go API (one
// writer, eight writers), and what agent_metrics costs over 30 days of 1,000,000 executions
// across 20 templates — read from the rollups — against the same figures computed exactly from
// the raw rows, which also measures how far the histogram percentiles are from the exact ones.

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/agents"
)

const (
	agentTemplates    = 20
	agentsPerTemplate = 10
	// executionsEnv overrides the number of executions loaded (for quick runs).
	executionsEnv = "CAIRN_BENCH_EXECUTIONS"
)

type agentResults struct {
	rec1, rec8, rec8same float64 // executions recorded per second
	recLatency           stats   // one writer, per call

	executions   int
	load         time.Duration
	rollupRows   [3]int64 // hourly, daily, agent-hourly
	tmplDay      stats    // one template, 30 days by day (Go API)
	tmplDayMCP   stats    // the same through MCP over stdio
	allDay       stats    // all templates, by day
	tmplHour     stats    // one template, 30 days by hour (720 buckets)
	agentDay     stats    // one agent, by day (agent-hourly rollups)
	rawExact     stats    // one template by day from the raw rows, exact percentiles
	p50Err       float64  // largest relative error of a daily p50 against percentile_cont
	p95Err       float64
	bucketsCheck int
}

func benchAgents(ctx context.Context, pool *pgxpool.Pool, bin, url string) (*agentResults, error) {
	store := agents.New(pool)
	r := &agentResults{executions: 1000000}
	if v := os.Getenv(executionsEnv); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1000 {
			return nil, fmt.Errorf("%s=%q: want a number of executions, at least 1000", executionsEnv, v)
		}
		r.executions = n
	}
	for i := range 8 {
		for _, tmpl := range []string{fmt.Sprintf("rate-%d", i), "rate-same"} {
			if _, err := store.Register(ctx, agents.RegisterParams{AgentID: fmt.Sprintf("%s-%d", tmpl, i), Template: tmpl}); err != nil {
				return nil, err
			}
		}
	}
	// Warm up, then one writer with per-call latency.
	for i := range 200 {
		if _, err := store.Record(ctx, agents.RecordParams{AgentID: "rate-0-0", TokensIn: int64(i), DurationMS: 10, Outcome: "success"}); err != nil {
			return nil, err
		}
	}
	r.recLatency = measure(2000, func(i int) error {
		_, err := store.Record(ctx, agents.RecordParams{AgentID: "rate-0-0", TokensIn: 100, TokensOut: int64(i % 50), DurationMS: int64(i%5000 + 1), CostUSD: 0.001, Outcome: "success"})
		return err
	})
	var err error
	if r.rec1, err = recordRate(ctx, store, 1, func(w int) string { return fmt.Sprintf("rate-%d-%d", w, w) }); err != nil {
		return nil, err
	}
	if r.rec8, err = recordRate(ctx, store, 8, func(w int) string { return fmt.Sprintf("rate-%d-%d", w, w) }); err != nil {
		return nil, err
	}
	if r.rec8same, err = recordRate(ctx, store, 8, func(w int) string { return fmt.Sprintf("rate-same-%d", w) }); err != nil {
		return nil, err
	}

	if err := loadExecutions(ctx, pool, r); err != nil {
		return nil, fmt.Errorf("load executions: %w", err)
	}
	until := time.Now()
	since := until.AddDate(0, 0, -30)
	q := func(p agents.MetricsParams) func(int) error {
		p.Since, p.Until = since, until
		return func(int) error {
			m, err := store.Metrics(ctx, p)
			if err == nil && m.Totals.Executions == 0 {
				err = fmt.Errorf("no executions in %+v", p)
			}
			return err
		}
	}
	const calls = 200
	measure(20, q(agents.MetricsParams{Template: "template-1", Bucket: "day"})) // warm the caches alike
	r.tmplDay = measure(calls, q(agents.MetricsParams{Template: "template-1", Bucket: "day"}))
	r.allDay = measure(calls, q(agents.MetricsParams{Bucket: "day"}))
	r.tmplHour = measure(calls/4, q(agents.MetricsParams{Template: "template-1", Bucket: "hour"}))
	r.agentDay = measure(calls, q(agents.MetricsParams{AgentID: "bench-1-1", Bucket: "day"}))

	cmd := exec.Command(bin, "--log-level", "warn", "serve", "--database-url", url)
	cmd.Stderr = os.Stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return nil, fmt.Errorf("start cairn: %w", err)
	}
	defer cs.Close()
	args := map[string]any{"template": "template-1", "bucket": "day", "since": since.Format(time.RFC3339Nano), "until": until.Format(time.RFC3339Nano)}
	callMetrics := func(int) error {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "agent_metrics", Arguments: args})
		if err == nil && res.IsError {
			err = fmt.Errorf("agent_metrics: %v", res.Content)
		}
		return err
	}
	measure(20, callMetrics)
	r.tmplDayMCP = measure(calls, callMetrics)

	// The same series computed from the raw rows with exact percentiles: the cost the rollups
	// avoid, and the yardstick of the histogram percentiles.
	const exact = `SELECT date_trunc('day', created_at, 'UTC') AS day, count(*), sum(tokens_used),
			percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms), percentile_cont(0.95) WITHIN GROUP (ORDER BY duration_ms)
		FROM agent_executions WHERE template_name = $1 AND created_at >= $2 AND created_at < $3 GROUP BY 1 ORDER BY 1`
	m, err := store.Metrics(ctx, agents.MetricsParams{Template: "template-1", Bucket: "day", Since: since, Until: until})
	if err != nil {
		return nil, err
	}
	byDay := map[time.Time]agents.Point{}
	for _, p := range m.Series {
		byDay[p.Start] = p
	}
	r.rawExact = measure(10, func(int) error {
		rows, err := pool.Query(ctx, exact, "template-1", m.Since, m.Until)
		if err != nil {
			return err
		}
		r.p50Err, r.p95Err, r.bucketsCheck = 0, 0, 0
		var day time.Time
		var n, toks int64
		var p50, p95 float64
		_, err = pgx.ForEachRow(rows, []any{&day, &n, &toks, &p50, &p95}, func() error {
			got, okk := byDay[day.UTC()]
			if !okk || got.Executions != n || got.Tokens != toks || got.P50DurationMS == nil {
				return fmt.Errorf("day %s: rollups say %+v, raw rows %d executions %d tokens", day, got.Stats, n, toks)
			}
			r.p50Err = math.Max(r.p50Err, math.Abs(*got.P50DurationMS-p50)/p50)
			r.p95Err = math.Max(r.p95Err, math.Abs(*got.P95DurationMS-p95)/p95)
			r.bucketsCheck++
			return nil
		})
		return err
	})
	return r, nil
}

// recordRate measures executions recorded per second by n writers, writer w on agent agent(w).
func recordRate(ctx context.Context, store *agents.Store, n int, agent func(int) string) (float64, error) {
	const d = 3 * time.Second
	var total atomic.Int64
	var firstErr atomic.Value
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				_, err := store.Record(ctx, agents.RecordParams{AgentID: agent(w), TokensIn: 100, TokensOut: int64(i % 50),
					DurationMS: int64(i%5000 + 1), CostUSD: 0.001, Outcome: "success"})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	if err, _ := firstErr.Load().(error); err != nil {
		return 0, err
	}
	return float64(total.Load()) / d.Seconds(), nil
}

// loadExecutions inserts the executions with one INSERT … SELECT generate_series: spread evenly
// over the last 30 days, 20 templates of 10 agents, log-normal-ish durations (about 50 ms to
// 20 s), 90% successes. It runs under cairn.maintenance, so the per-row capture trigger stays
// out of it (no event per row); the statement-level rollup trigger aggregates all rows at once
// — the same SQL that maintains the rollups for each recorded execution.
func loadExecutions(ctx context.Context, pool *pgxpool.Pool, r *agentResults) error {
	t0 := time.Now()
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT set_config('cairn.maintenance', 'on', true)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO agents (agent_id, template, state)
			SELECT 'bench-' || t || '-' || a, 'template-' || t, 'idle' FROM generate_series(1, $1::int) t, generate_series(1, $2::int) a`,
			agentTemplates, agentsPerTemplate); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO agent_executions (agent_id, template_name, tokens_in, tokens_out, tokens_used, duration_ms, cost_usd, outcome, created_at)
			SELECT 'bench-' || t || '-' || a, 'template-' || t, tin, tout, tin + tout, dur, (tin + tout) * 0.000002,
				CASE WHEN u < 0.90 THEN 'success' WHEN u < 0.95 THEN 'failure' WHEN u < 0.98 THEN 'timeout' ELSE 'cancelled' END,
				now() - (g * (interval '30 days' / $1::int)) + interval '1 second'
			FROM (SELECT g, g % $2::int + 1 AS t, (g / $2::int) % $3::int + 1 AS a, 500 + (g * 7919) % 3000 AS tin, 100 + (g * 104729) % 900 AS tout,
				exp(4 + 6 * random() * random())::bigint AS dur, random() AS u
				FROM generate_series(1, $1::bigint) g) x`, r.executions, agentTemplates, agentsPerTemplate)
		return err
	})
	if err != nil {
		return err
	}
	r.load = time.Since(t0)
	if _, err := pool.Exec(ctx, `ANALYZE agent_executions; ANALYZE agent_stats_hourly; ANALYZE agent_stats_daily; ANALYZE agent_stats_agent_hourly`); err != nil {
		return err
	}
	for i, t := range []string{"agent_stats_hourly", "agent_stats_daily", "agent_stats_agent_hourly"} {
		if err := pool.QueryRow(ctx, `SELECT count(*) FROM `+t).Scan(&r.rollupRows[i]); err != nil {
			return err
		}
	}
	return nil
}

func printAgents(w io.Writer, r *agentResults) {
	fmt.Fprintf(w, "\n| agent_record_execution (Go API `Store.Record`, one round trip, each its own transaction) | executions/s |\n|---|---|\n")
	fmt.Fprintf(w, "| 1 writer | %.0f (median %s, p95 %s per call) |\n", r.rec1, ms(r.recLatency.median), ms(r.recLatency.p95))
	fmt.Fprintf(w, "| 8 writers, 8 agents of 8 templates | %.0f |\n", r.rec8)
	fmt.Fprintf(w, "| 8 writers, 8 agents of one template (they share the rollup rows of the hour and day) | %.0f |\n", r.rec8same)
	fmt.Fprintf(w, "\n| agent_metrics over 30 days, %d executions, %d templates × %d agents | median | p95 | goal |\n|---|---|---|---|\n",
		r.executions, agentTemplates, agentsPerTemplate)
	fmt.Fprintf(w, "| one template, by day (Go API) | %s | %s | under 50 ms |\n", ms(r.tmplDay.median), ms(r.tmplDay.p95))
	fmt.Fprintf(w, "| the same through MCP over stdio (`agent_metrics`) | %s | %s | |\n", ms(r.tmplDayMCP.median), ms(r.tmplDayMCP.p95))
	fmt.Fprintf(w, "| all templates, by day | %s | %s | |\n", ms(r.allDay.median), ms(r.allDay.p95))
	fmt.Fprintf(w, "| one template, by hour (720 buckets) | %s | %s | |\n", ms(r.tmplHour.median), ms(r.tmplHour.p95))
	fmt.Fprintf(w, "| one agent, by day (agent-hourly rollups) | %s | %s | |\n", ms(r.agentDay.median), ms(r.agentDay.p95))
	fmt.Fprintf(w, "| one template by day from the raw rows, exact percentile_cont (no rollups), median of 10 | %s | %s | |\n", ms(r.rawExact.median), ms(r.rawExact.p95))
	fmt.Fprintf(w, "| loading the executions: one INSERT … SELECT generate_series, rollups by the statement trigger | %.1f s | | |\n", r.load.Seconds())
	fmt.Fprintf(w, "| rollup rows: template-hourly / template-daily / agent-hourly | %d / %d / %d | | |\n", r.rollupRows[0], r.rollupRows[1], r.rollupRows[2])
	fmt.Fprintf(w, "| histogram percentiles vs exact, largest relative error over %d days: p50 / p95 | %.2f%% / %.2f%% | | within 9.05%% |\n",
		r.bucketsCheck, 100*r.p50Err, 100*r.p95Err)
}
