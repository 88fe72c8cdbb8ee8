package db

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// PoolWaits times every acquire of a connection from cairn's pools into a histogram labelled
// by pool ("tools" or "system", from the pool's application_name): how long callers and jobs
// waited for a connection. Set it as the pools' tracer (config.Config.PoolTracer) before they
// are opened, and register Collector.
type PoolWaits struct {
	hist *prometheus.HistogramVec
}

// NewPoolWaits returns an empty histogram.
func NewPoolWaits() *PoolWaits {
	return &PoolWaits{hist: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "cairn_db_pool_acquire_wait_seconds",
		Help:    "Time to get a connection from a pool, by pool: tools (tool calls and domain work) or system (River, migrations, /readyz, subscriptions).",
		Buckets: []float64{.00001, .0001, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
	}, []string{"pool"})}
}

// Collector is the histogram, to register.
func (w *PoolWaits) Collector() prometheus.Collector { return w.hist }

type acquireStart struct{}

// TraceAcquireStart notes when the acquire began.
func (w *PoolWaits) TraceAcquireStart(ctx context.Context, _ *pgxpool.Pool, _ pgxpool.TraceAcquireStartData) context.Context {
	return context.WithValue(ctx, acquireStart{}, time.Now())
}

// TraceAcquireEnd records how long it took.
func (w *PoolWaits) TraceAcquireEnd(ctx context.Context, pool *pgxpool.Pool, _ pgxpool.TraceAcquireEndData) {
	start, ok := ctx.Value(acquireStart{}).(time.Time)
	if !ok {
		return
	}
	name := "tools"
	if pool.Config().ConnConfig.RuntimeParams["application_name"] == SystemApplicationName {
		name = "system"
	}
	w.hist.WithLabelValues(name).Observe(time.Since(start).Seconds())
}

// SystemApplicationName is the application_name of the system pool's sessions.
const SystemApplicationName = "cairn (system)"

// TraceQueryStart does nothing: a pool's tracer must be a pgx.QueryTracer too.
func (w *PoolWaits) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	return ctx
}

// TraceQueryEnd does nothing.
func (w *PoolWaits) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
