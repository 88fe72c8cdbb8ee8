package mcp

import (
	"context"
	"errors"
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

	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
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
	reg        *prometheus.Registry
	log        *slog.Logger
	toolCalls  *prometheus.CounterVec
	toolTime   *prometheus.HistogramVec
	toolErrors *prometheus.CounterVec
	requests   *prometheus.CounterVec

	mu    sync.Mutex
	tools map[string]bool // tool names that have produced a result, see unknownTool
}

// MetricsSources are what /metrics reads from the database at scrape time; nil fields are left
// out.
type MetricsSources struct {
	// Pools are the connection pools by name ("tools", "system").
	Pools map[string]*pgxpool.Pool
	// Agents are the per-template agent totals.
	Agents AgentTotals
	// Jobs counts the background jobs by state.
	Jobs func(context.Context) (jobs.Depth, error)
	// Backlog counts the knowledge rows waiting to be embedded, and those that failed.
	Backlog func(context.Context) ([]knowledge.EmbedBacklog, error)
}

// newRegistry is the registry every cairn process with an HTTP listener serves: the Go runtime,
// the process, and what src reads from the database.
func newRegistry(src MetricsSources, log *slog.Logger) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if len(src.Pools) > 0 {
		reg.MustRegister(poolCollector{src.Pools})
	}
	if src.Agents != nil {
		reg.MustRegister(agentCollector{src.Agents, log})
	}
	if src.Jobs != nil {
		reg.MustRegister(jobsCollector{src.Jobs, log})
	}
	if src.Backlog != nil {
		reg.MustRegister(backlogCollector{src.Backlog, log})
	}
	return reg
}

func newMetrics(src MetricsSources, log *slog.Logger) *metrics {
	m := &metrics{
		reg: newRegistry(src, log),
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
		toolErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_tool_errors_total",
			Help: "Tool calls that returned a tool error, by tool and kind: input, not_found, conflict, state, denied, limit, outage or fault.",
		}, []string{"tool", "kind"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_mcp_requests_total",
			Help: "MCP requests and notifications received, by method (tools/call included) and outcome: ok or error (a protocol error).",
		}, []string{"method", "outcome"}),
		tools: map[string]bool{},
	}
	m.reg.MustRegister(m.toolCalls, m.toolTime, m.toolErrors, m.requests)
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
			if r, ok := res.(*sdk.CallToolResult); ok && r != nil && r.IsError {
				m.toolErrors.WithLabelValues(tool, errorKind(r.GetError())).Inc()
			}
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
	// callerr.Input errors, which callersToFix knows).
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
	poolLabels          = []string{"pool"}
	poolTotalDesc       = prometheus.NewDesc("cairn_db_pool_total_connections", "Connections in a database pool: idle, acquired and being opened.", poolLabels, nil)
	poolIdleDesc        = prometheus.NewDesc("cairn_db_pool_idle_connections", "Idle connections in a database pool.", poolLabels, nil)
	poolAcquiredDesc    = prometheus.NewDesc("cairn_db_pool_acquired_connections", "Database pool connections in use.", poolLabels, nil)
	poolConstructDesc   = prometheus.NewDesc("cairn_db_pool_constructing_connections", "Database pool connections being opened.", poolLabels, nil)
	poolMaxDesc         = prometheus.NewDesc("cairn_db_pool_max_connections", "A database pool's maximum size.", poolLabels, nil)
	poolAcquiresDesc    = prometheus.NewDesc("cairn_db_pool_acquires_total", "Successful connection acquires from a database pool.", poolLabels, nil)
	poolAcquireWaitDesc = prometheus.NewDesc("cairn_db_pool_acquire_wait_seconds_total", "Time spent in successful acquires from a database pool.", poolLabels, nil)
	poolEmptyDesc       = prometheus.NewDesc("cairn_db_pool_empty_acquires_total", "Successful acquires that had to wait for a connection because none was idle.", poolLabels, nil)
	poolEmptyWaitDesc   = prometheus.NewDesc("cairn_db_pool_empty_acquire_wait_seconds_total", "Time spent waiting in acquires that found no idle connection.", poolLabels, nil)
	poolCanceledDesc    = prometheus.NewDesc("cairn_db_pool_canceled_acquires_total", "Acquires from a database pool canceled by their context.", poolLabels, nil)
	poolNewConnsDesc    = prometheus.NewDesc("cairn_db_pool_new_connections_total", "Connections a database pool has opened.", poolLabels, nil)
)

// poolCollector reads pgxpool's statistics at scrape time, so that they are never stale and
// cost nothing between scrapes; each pool is labelled with its name.
type poolCollector struct{ pools map[string]*pgxpool.Pool }

func (c poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolTotalDesc, poolIdleDesc, poolAcquiredDesc, poolConstructDesc, poolMaxDesc,
		poolAcquiresDesc, poolAcquireWaitDesc, poolEmptyDesc, poolEmptyWaitDesc, poolCanceledDesc, poolNewConnsDesc} {
		ch <- d
	}
}

func (c poolCollector) Collect(ch chan<- prometheus.Metric) {
	for name, pool := range c.pools {
		st := pool.Stat()
		gauge := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, name)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, name)
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

// read calls Totals with a deadline (readWithin).
func (c agentCollector) read() ([]TemplateTotals, error) {
	return readWithin(c.totals.Totals)
}

// readWithin calls read with a deadline and stops waiting at the deadline even if read does not
// heed its context, so that a scrape never hangs on the database; a late answer is dropped.
func readWithin[T any](read func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(context.Background(), agentTotalsTimeout)
	defer cancel()
	type answer struct {
		v   T
		err error
	}
	done := make(chan answer, 1)
	go func() {
		// This goroutine is no handler's: a panic here would take the process down.
		defer func() {
			if p := recover(); p != nil {
				done <- answer{err: fmt.Errorf("metrics source panicked: %v", p)}
			}
		}()
		v, err := read(ctx)
		done <- answer{v, err}
	}()
	select {
	case a := <-done:
		return a.v, a.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

var (
	jobsUpDesc     = prometheus.NewDesc("cairn_jobs_up", "1 if the last scrape counted the background jobs, 0 if that failed or timed out.", nil, nil)
	jobsDesc       = prometheus.NewDesc("cairn_jobs", "Background jobs (River) by state, in all processes.", []string{"state"}, nil)
	jobsOldestDesc = prometheus.NewDesc("cairn_jobs_oldest_available_seconds", "Age of the oldest job waiting to be worked.", nil, nil)
)

// jobsCollector counts the background jobs by state at scrape time.
type jobsCollector struct {
	depth func(context.Context) (jobs.Depth, error)
	log   *slog.Logger
}

func (c jobsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- jobsUpDesc
	ch <- jobsDesc
	ch <- jobsOldestDesc
}

func (c jobsCollector) Collect(ch chan<- prometheus.Metric) {
	d, err := readWithin(c.depth)
	if err != nil {
		if !errors.Is(err, jobs.ErrNoJobTables) {
			c.log.Warn("metrics: counting jobs", "err", err)
		}
		ch <- prometheus.MustNewConstMetric(jobsUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(jobsUpDesc, prometheus.GaugeValue, 1)
	for state, n := range d.States {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(n), string(state))
	}
	ch <- prometheus.MustNewConstMetric(jobsOldestDesc, prometheus.GaugeValue, d.OldestAvailable.Seconds())
}

var (
	backlogUpDesc = prometheus.NewDesc("cairn_knowledge_backlog_up", "1 if the last scrape counted the knowledge rows to embed, 0 if that failed (no knowledge graph) or timed out.", nil, nil)
	backlogDesc   = prometheus.NewDesc("cairn_knowledge_embed_backlog", "Knowledge rows waiting to be embedded (pending) and those that failed, by kind.", []string{"kind", "state"}, nil)
)

// backlogCollector counts the knowledge graph's embed backlog at scrape time.
type backlogCollector struct {
	backlog func(context.Context) ([]knowledge.EmbedBacklog, error)
	log     *slog.Logger
}

func (c backlogCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogUpDesc
	ch <- backlogDesc
}

func (c backlogCollector) Collect(ch chan<- prometheus.Metric) {
	rows, err := readWithin(c.backlog)
	if err != nil {
		if !errors.Is(err, knowledge.ErrUnavailable) {
			c.log.Warn("metrics: counting the embed backlog", "err", err)
		}
		ch <- prometheus.MustNewConstMetric(backlogUpDesc, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogUpDesc, prometheus.GaugeValue, 1)
	for _, r := range rows {
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(r.Pending), r.Kind, "pending")
		ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(r.Failed), r.Kind, "failed")
	}
}
