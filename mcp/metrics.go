package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// AgentTotals reports, per agent template, what agents have run and spent, for the metrics
// endpoint. An agents store plugs in through AgentTotalsFunc; a struct with TemplateTotals'
// fields in the same order converts with a plain TemplateTotals(t).
type AgentTotals interface {
	Totals(ctx context.Context) ([]TemplateTotals, error)
}

// AgentTotalsFunc adapts a function to AgentTotals, e.g. one that converts an agents store's
// own totals type.
type AgentTotalsFunc func(ctx context.Context) ([]TemplateTotals, error)

// Totals calls f.
func (f AgentTotalsFunc) Totals(ctx context.Context) ([]TemplateTotals, error) { return f(ctx) }

// TemplateTotals are one agent template's lifetime totals.
type TemplateTotals struct {
	Template   string
	Executions int64
	Tokens     int64
	CostUSD    float64
	Failures   int64
}

// agentTotalsTimeout bounds the totals query of one scrape: Prometheus would rather get the rest
// of the metrics and cairn_agent_totals_up 0 than time out on a slow database.
const agentTotalsTimeout = 2 * time.Second

// Outcomes of a tool call, as the outcome label says them.
const (
	outcomeOK        = "ok"
	outcomeToolError = "tool_error" // the caller's to fix (callersToFix, bad arguments)
	outcomeError     = "error"      // a fault: the database, cairn, or a protocol error
)

// unknownTool labels calls to tool names that never produced a result: callers choose the name,
// and a label per made-up name would let any client grow the series without bound.
const unknownTool = "unknown"

// metrics is one Server's Prometheus registry and the instruments the middleware updates. Each
// Server has its own registry, so that several servers in one process (tests) never collide.
type metrics struct {
	reg       *prometheus.Registry
	log       *slog.Logger
	toolCalls *prometheus.CounterVec
	toolTime  *prometheus.HistogramVec
	requests  *prometheus.CounterVec

	mu    sync.Mutex
	tools map[string]bool // tool names that have produced a result, see unknownTool
}

func newMetrics(pool *pgxpool.Pool, totals AgentTotals, log *slog.Logger) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		log: log,
		toolCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_tool_calls_total",
			Help: "MCP tool calls by tool and outcome: ok, tool_error (the caller's to fix) or error (a fault or protocol error).",
		}, []string{"tool", "outcome"}),
		toolTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cairn_tool_call_duration_seconds",
			Help: "Time to handle an MCP tool call, by tool.",
			// From a cached catalog lookup (~0.1 ms) to a long query near the statement timeout.
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}, []string{"tool"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_mcp_requests_total",
			Help: "MCP requests and notifications received, by method (tools/call included) and outcome: ok or error (a protocol error).",
		}, []string{"method", "outcome"}),
		tools: map[string]bool{},
	}
	m.reg.MustRegister(m.toolCalls, m.toolTime, m.requests,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if pool != nil {
		m.reg.MustRegister(poolCollector{pool})
	}
	if totals != nil {
		m.reg.MustRegister(agentCollector{totals, log})
	}
	return m
}

// middleware counts and times requests. It reads a tool call's outcome from its result, so that
// every tool is counted the same way without each handler having to report it.
func (m *metrics) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		start := time.Now()
		res, err := next(ctx, method, req)
		outcome := outcomeOK
		if err != nil {
			outcome = outcomeError
		}
		m.requests.WithLabelValues(method, outcome).Inc()
		if call, isCall := req.(*sdk.CallToolRequest); isCall && call.Params != nil {
			tool := m.toolLabel(call.Params.Name, err == nil)
			m.toolCalls.WithLabelValues(tool, toolOutcome(res, err)).Inc()
			m.toolTime.WithLabelValues(tool).Observe(time.Since(start).Seconds())
		}
		return res, err
	}
}

// toolLabel is the tool label for a call to name: the name once the tool has been seen to exist
// (it gave a result rather than a protocol error), unknownTool otherwise.
func (m *metrics) toolLabel(name string, gaveResult bool) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	if gaveResult {
		m.tools[name] = true
	}
	if m.tools[name] {
		return name
	}
	return unknownTool
}

// toolOutcome classifies a finished tool call.
func toolOutcome(res sdk.Result, err error) string {
	if err != nil {
		return outcomeError
	}
	r, isTool := res.(*sdk.CallToolResult)
	if !isTool || r == nil {
		return outcomeError
	}
	if !r.IsError {
		return outcomeOK
	}
	if e := r.GetError(); e != nil && (callersToFix(e) || argumentError(e)) {
		return outcomeToolError
	}
	return outcomeError
}

// argumentError reports whether a tool error is the SDK's rejection of arguments that fail a
// tool's input schema: a plain error, recognized by its fixed wording (metrics_test pins it).
func argumentError(err error) bool {
	msg := err.Error()
	// The SDK's input schema check has no error type of its own (decodeArgs' errors are
	// InputErrors, which callersToFix knows).
	return strings.Contains(msg, `validating "arguments"`)
}

// handler serves the registry in the Prometheus exposition formats. A collector that fails
// (none of cairn's do: the agent totals report through cairn_agent_totals_up) still leaves the
// rest of the metrics served.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      promLog{m.log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

// promLog passes promhttp's errors to the server's logger.
type promLog struct{ log *slog.Logger }

func (l promLog) Println(v ...any) {
	l.log.Warn("metrics: " + strings.TrimSuffix(fmt.Sprintln(v...), "\n"))
}

var (
	poolTotalDesc       = prometheus.NewDesc("cairn_db_pool_total_connections", "Connections in the database pool: idle, acquired and being opened.", nil, nil)
	poolIdleDesc        = prometheus.NewDesc("cairn_db_pool_idle_connections", "Idle connections in the database pool.", nil, nil)
	poolAcquiredDesc    = prometheus.NewDesc("cairn_db_pool_acquired_connections", "Database pool connections in use.", nil, nil)
	poolConstructDesc   = prometheus.NewDesc("cairn_db_pool_constructing_connections", "Database pool connections being opened.", nil, nil)
	poolMaxDesc         = prometheus.NewDesc("cairn_db_pool_max_connections", "The database pool's maximum size.", nil, nil)
	poolAcquiresDesc    = prometheus.NewDesc("cairn_db_pool_acquires_total", "Successful connection acquires from the database pool.", nil, nil)
	poolAcquireWaitDesc = prometheus.NewDesc("cairn_db_pool_acquire_wait_seconds_total", "Time spent in successful acquires from the database pool.", nil, nil)
	poolEmptyDesc       = prometheus.NewDesc("cairn_db_pool_empty_acquires_total", "Successful acquires that had to wait for a connection because none was idle.", nil, nil)
	poolEmptyWaitDesc   = prometheus.NewDesc("cairn_db_pool_empty_acquire_wait_seconds_total", "Time spent waiting in acquires that found no idle connection.", nil, nil)
	poolCanceledDesc    = prometheus.NewDesc("cairn_db_pool_canceled_acquires_total", "Acquires from the database pool canceled by their context.", nil, nil)
	poolNewConnsDesc    = prometheus.NewDesc("cairn_db_pool_new_connections_total", "Connections the database pool has opened.", nil, nil)
)

// poolCollector reads pgxpool's statistics at scrape time, so that they are never stale and
// cost nothing between scrapes.
type poolCollector struct{ pool *pgxpool.Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotalDesc, poolIdleDesc, poolAcquiredDesc, poolConstructDesc, poolMaxDesc,
		poolAcquiresDesc, poolAcquireWaitDesc, poolEmptyDesc, poolEmptyWaitDesc, poolCanceledDesc, poolNewConnsDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.pool.Stat()
	gauge := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	counter := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v)
	}
	gauge(poolTotalDesc, float64(st.TotalConns()))
	gauge(poolIdleDesc, float64(st.IdleConns()))
	gauge(poolAcquiredDesc, float64(st.AcquiredConns()))
	gauge(poolConstructDesc, float64(st.ConstructingConns()))
	gauge(poolMaxDesc, float64(st.MaxConns()))
	counter(poolAcquiresDesc, float64(st.AcquireCount()))
	counter(poolAcquireWaitDesc, st.AcquireDuration().Seconds())
	counter(poolEmptyDesc, float64(st.EmptyAcquireCount()))
	counter(poolEmptyWaitDesc, st.EmptyAcquireWaitTime().Seconds())
	counter(poolCanceledDesc, float64(st.CanceledAcquireCount()))
	counter(poolNewConnsDesc, float64(st.NewConnsCount()))
}

var (
	agentUpDesc         = prometheus.NewDesc("cairn_agent_totals_up", "1 if the last scrape read the agent totals from the database, 0 if that failed or timed out.", nil, nil)
	agentExecutionsDesc = prometheus.NewDesc("cairn_agent_executions_total", "Agent executions recorded, by template.", []string{"template"}, nil)
	agentTokensDesc     = prometheus.NewDesc("cairn_agent_tokens_total", "Tokens agents used, by template.", []string{"template"}, nil)
	agentCostDesc       = prometheus.NewDesc("cairn_agent_cost_usd_total", "What agents cost, in US dollars, by template.", []string{"template"}, nil)
	agentFailuresDesc   = prometheus.NewDesc("cairn_agent_failures_total", "Agent executions that failed, by template.", []string{"template"}, nil)
)

// agentCollector reads the agent totals from the database at scrape time: they are the
// database's, shared by every cairn process, so no process could count them itself.
type agentCollector struct {
	totals AgentTotals
	log    *slog.Logger
}

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{agentUpDesc, agentExecutionsDesc, agentTokensDesc, agentCostDesc, agentFailuresDesc} {
		ch <- d
	}
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	rows, err := c.read()
	if err != nil {
		c.log.Warn("metrics: reading agent totals", "err", err)
		ch <- prometheus.MustNewConstMetric(agentUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(agentUpDesc, prometheus.GaugeValue, 1)
	// A template listed twice would make the whole scrape fail as duplicate series; add them up.
	byTemplate := map[string]*TemplateTotals{}
	var order []string
	for _, r := range rows {
		t, seen := byTemplate[r.Template]
		if !seen {
			t = &TemplateTotals{Template: r.Template}
			byTemplate[r.Template] = t
			order = append(order, r.Template)
		}
		t.Executions += r.Executions
		t.Tokens += r.Tokens
		t.CostUSD += r.CostUSD
		t.Failures += r.Failures
	}
	for _, name := range order {
		t := byTemplate[name]
		ch <- prometheus.MustNewConstMetric(agentExecutionsDesc, prometheus.CounterValue, float64(t.Executions), name)
		ch <- prometheus.MustNewConstMetric(agentTokensDesc, prometheus.CounterValue, float64(t.Tokens), name)
		ch <- prometheus.MustNewConstMetric(agentCostDesc, prometheus.CounterValue, t.CostUSD, name)
		ch <- prometheus.MustNewConstMetric(agentFailuresDesc, prometheus.CounterValue, float64(t.Failures), name)
	}
}

// read calls Totals with a deadline and stops waiting at the deadline even if Totals does not
// heed its context, so that a scrape never hangs on the database; a late answer is dropped.
func (c agentCollector) read() ([]TemplateTotals, error) {
	ctx, cancel := context.WithTimeout(context.Background(), agentTotalsTimeout)
	defer cancel()
	type answer struct {
		rows []TemplateTotals
		err  error
	}
	done := make(chan answer, 1)
	go func() {
		// This goroutine is no handler's: a panic here would take the process down.
		defer func() {
			if p := recover(); p != nil {
				done <- answer{err: fmt.Errorf("agent totals panicked: %v", p)}
			}
		}()
		rows, err := c.totals.Totals(ctx)
		done <- answer{rows, err}
	}()
	select {
	case a := <-done:
		return a.rows, a.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
