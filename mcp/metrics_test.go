package mcp_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// metricsServer serves an in-process cairn over HTTP on its own pool (which the test may close),
// with agent totals from totals.
func metricsServer(t *testing.T, db *testdb.DB, cfg *config.Config, totals mcp.AgentTotals) (*httptest.Server, *pgxpool.Pool) {
	t.Helper()
	if cfg == nil {
		cfg = &config.Config{}
	}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, db.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, err := sqlexec.New(ctx, pool, sqlexec.Options{MaxRows: cfg.MaxRows, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.New(mcp.Options{Config: cfg, Pool: pool, Runner: run, Logger: log, Version: "test", AgentTotals: totals})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	t.Cleanup(srv.Close)
	return ts, pool
}

// scrape fetches /metrics (with token, if not empty) and parses it.
func scrape(t *testing.T, baseURL, token string) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, baseURL+"/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("GET /metrics: %d %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

func get(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// sample finds the series of family name whose labels include every pair in labels (name, value,
// name, value, ...); nil if there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) *dto.Metric {
	f := fams[name]
	if f == nil {
		return nil
	}
next:
	for _, m := range f.Metric {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value; it fails the test if the series is missing.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) float64 {
	t.Helper()
	m := sample(fams, name, labels...)
	switch {
	case m == nil:
		t.Fatalf("no series %s%v", name, labels)
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	}
	t.Fatalf("%s%v is neither a counter nor a gauge", name, labels)
	return 0
}

func TestMetricsToolCalls(t *testing.T) {
	db := testdb.New(t)
	ts, pool := metricsServer(t, db, &config.Config{Toolsets: []string{"generic", "checkpoint"}}, nil)
	cs := connectHTTP(t, ts.URL, "http")

	ok(t, cs, "query", map[string]any{"sql": "SELECT 1"})
	ok(t, cs, "query", map[string]any{"sql": "SELECT 2"})
	ok(t, cs, "list_schemas", map[string]any{})
	fails(t, cs, "query", map[string]any{"sql": "SELEC 1"}, "syntax")                        // PostgreSQL rejects it
	fails(t, cs, "query", map[string]any{"sql": "SELECT 1", "bogus": 1}, "unknown argument") // the argument check
	fails(t, cs, "query", map[string]any{"sql": 5}, "must be a string")                      // of every tool
	fails(t, cs, "describe_table", map[string]any{"table": 5}, "must be a string")
	if _, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: "no_such_tool_x1", Arguments: map[string]any{}}); err == nil {
		t.Fatal("unknown tool: want a protocol error")
	}
	// A fault: the database is gone from under the server.
	pool.Close()
	fails(t, cs, "query", map[string]any{"sql": "SELECT 3"})

	fams := scrape(t, ts.URL, "")
	for _, c := range []struct {
		tool, outcome string
		want          float64
	}{
		{"query", "ok", 2},
		{"query", "tool_error", 3},
		{"query", "error", 1},
		{"list_schemas", "ok", 1},
		{"describe_table", "tool_error", 1},
		{"unknown", "error", 1},
	} {
		if got := value(t, fams, "cairn_tool_calls_total", "tool", c.tool, "outcome", c.outcome); got != c.want {
			t.Errorf("cairn_tool_calls_total{tool=%q,outcome=%q} = %v, want %v", c.tool, c.outcome, got, c.want)
		}
	}
	if m := sample(fams, "cairn_tool_calls_total", "tool", "no_such_tool_x1"); m != nil {
		t.Errorf("a made-up tool name became a label: %v", m)
	}
	if m := sample(fams, "cairn_tool_calls_total", "tool", "describe_table", "outcome", "error"); m != nil {
		t.Errorf("an argument error counted as a fault: %v", m)
	}

	h := sample(fams, "cairn_tool_call_duration_seconds", "tool", "query")
	if h == nil || h.Histogram == nil {
		t.Fatalf("no histogram for query: %v", fams["cairn_tool_call_duration_seconds"])
	}
	if n := h.Histogram.GetSampleCount(); n != 6 {
		t.Errorf("query duration observations = %d, want 6", n)
	}
	if h.Histogram.GetSampleSum() <= 0 {
		t.Errorf("query durations sum to %v", h.Histogram.GetSampleSum())
	}
	if got := value(t, fams, "cairn_mcp_requests_total", "method", "tools/call", "outcome", "error"); got != 1 {
		t.Errorf("tools/call protocol errors = %v, want 1", got)
	}
	// The session's start (initialize, or server/discover in stateless HTTP) is counted too.
	var other float64
	for _, m := range fams["cairn_mcp_requests_total"].GetMetric() {
		for _, lp := range m.Label {
			if lp.GetName() == "method" && lp.GetValue() != "tools/call" {
				other += m.Counter.GetValue()
			}
		}
	}
	if other < 1 {
		t.Errorf("no requests counted but tools/call: %v", fams["cairn_mcp_requests_total"])
	}

	if got := value(t, fams, "cairn_db_pool_max_connections"); got < 1 {
		t.Errorf("cairn_db_pool_max_connections = %v", got)
	}
	if got := value(t, fams, "cairn_db_pool_acquires_total"); got < 3 {
		t.Errorf("cairn_db_pool_acquires_total = %v, want at least the successful calls", got)
	}
	for _, name := range []string{"cairn_db_pool_total_connections", "cairn_db_pool_idle_connections", "cairn_db_pool_acquired_connections",
		"cairn_db_pool_acquire_wait_seconds_total", "cairn_db_pool_canceled_acquires_total", "go_goroutines", "process_cpu_seconds_total"} {
		if fams[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	if fams["cairn_agent_totals_up"] != nil || fams["cairn_agent_executions_total"] != nil {
		t.Error("agent totals served without the agents toolset or Options.AgentTotals")
	}
}

func TestMetricsAgentTotals(t *testing.T) {
	db := testdb.New(t)
	totals := mcp.AgentTotalsFunc(func(context.Context) ([]mcp.TemplateTotals, error) {
		return []mcp.TemplateTotals{
			{Template: "researcher", Executions: 7, Tokens: 12000, CostUSD: 0.42, Failures: 1},
			{Template: "coder", Executions: 3, Tokens: 900, CostUSD: 0.05},
			{Template: "coder", Executions: 1, Tokens: 100, CostUSD: 0.01, Failures: 1},
		}, nil
	})
	ts, _ := metricsServer(t, db, nil, totals)
	fams := scrape(t, ts.URL, "")
	if got := value(t, fams, "cairn_agent_totals_up"); got != 1 {
		t.Errorf("cairn_agent_totals_up = %v, want 1", got)
	}
	for _, c := range []struct {
		name, template string
		want           float64
	}{
		{"cairn_agent_executions_total", "researcher", 7},
		{"cairn_agent_tokens_total", "researcher", 12000},
		{"cairn_agent_cost_usd_total", "researcher", 0.42},
		{"cairn_agent_failures_total", "researcher", 1},
		// Listed twice, added up rather than served as duplicate series.
		{"cairn_agent_executions_total", "coder", 4},
		{"cairn_agent_tokens_total", "coder", 1000},
		{"cairn_agent_failures_total", "coder", 1},
	} {
		if got := value(t, fams, c.name, "template", c.template); got != c.want {
			t.Errorf("%s{template=%q} = %v, want %v", c.name, c.template, got, c.want)
		}
	}
	if got := value(t, fams, "cairn_agent_cost_usd_total", "template", "coder"); got < 0.0599 || got > 0.0601 {
		t.Errorf("coder cost = %v, want 0.06", got)
	}
}

func TestMetricsAgentTotalsFail(t *testing.T) {
	db := testdb.New(t)
	// One fails at once; the other ignores its context and would never answer.
	never := make(chan struct{})
	t.Cleanup(func() { close(never) })
	for name, totals := range map[string]mcp.AgentTotalsFunc{
		"error": func(context.Context) ([]mcp.TemplateTotals, error) {
			return nil, errors.New("relation \"agent_executions\" does not exist")
		},
		"hang": func(context.Context) ([]mcp.TemplateTotals, error) {
			<-never
			return nil, nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			ts, _ := metricsServer(t, db, nil, totals)
			start := time.Now()
			fams := scrape(t, ts.URL, "")
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("scrape took %v", d)
			}
			if got := value(t, fams, "cairn_agent_totals_up"); got != 0 {
				t.Errorf("cairn_agent_totals_up = %v, want 0", got)
			}
			if fams["cairn_agent_executions_total"] != nil {
				t.Error("agent totals served although reading them failed")
			}
			if fams["cairn_db_pool_max_connections"] == nil || fams["go_goroutines"] == nil {
				t.Error("the other metrics are missing")
			}
		})
	}
}

func TestMetricsAuth(t *testing.T) {
	db := testdb.New(t)
	ts, _ := metricsServer(t, db, &config.Config{AuthToken: "s3cret"}, nil)
	if code, body := get(t, ts.URL+"/metrics", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics without the token: %d %s", code, body)
	}
	if code, _ := get(t, ts.URL+"/metrics", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("GET /metrics with a wrong token: %d", code)
	}
	if fams := scrape(t, ts.URL, "s3cret"); fams["cairn_db_pool_max_connections"] == nil {
		t.Error("no pool metrics with the token")
	}
	if code, body := get(t, ts.URL+"/healthz", ""); code != http.StatusOK {
		t.Errorf("GET /healthz without the token: %d %s", code, body)
	}
}

// TestMetricsAgentTotalsFromTheAgentsToolset: with the agents toolset on, /metrics serves the
// agents store's totals without any wiring.
func TestMetricsAgentTotalsFromTheAgentsToolset(t *testing.T) {
	db := testdb.New(t)
	ts, _ := metricsServer(t, db, nil, nil)
	cs := connectHTTP(t, ts.URL, "http")
	ok(t, cs, "agent_register", map[string]any{"agent_id": "a1", "template": "researcher"})
	ok(t, cs, "agent_record_execution", map[string]any{"agent_id": "a1", "tokens_in": 100, "tokens_out": 20, "duration_ms": 1500, "outcome": "failure", "error": "boom"})
	fams := scrape(t, ts.URL, "")
	if got := value(t, fams, "cairn_agent_totals_up"); got != 1 {
		t.Fatalf("cairn_agent_totals_up = %v", got)
	}
	if got := value(t, fams, "cairn_agent_executions_total", "template", "researcher"); got != 1 {
		t.Errorf("executions = %v", got)
	}
	if got := value(t, fams, "cairn_agent_failures_total", "template", "researcher"); got != 1 {
		t.Errorf("failures = %v", got)
	}
}
