package mcp

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/pprof"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

// OpsOptions configure OpsHandler.
type OpsOptions struct {
	// Pool is the pool of domain work and System cairn's own (River, /readyz).
	Pool, System *pgxpool.Pool
	// PoolWaits, when set, is the histogram of the pools' acquire waits.
	PoolWaits *db.PoolWaits
	// Knowledge, when set, gives the embed backlog.
	Knowledge *knowledge.Store
	// Auth guards /metrics as on serve; nil leaves it open.
	Auth   *auth.Verifier
	Logger *slog.Logger
}

// OpsHandler serves what operators' tools ask a cairn process that has no MCP endpoint (`cairn
// worker`): /healthz, /readyz and /metrics, answered as `cairn serve` answers them.
func OpsHandler(o OpsOptions) http.Handler {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	src := MetricsSources{Pools: map[string]*pgxpool.Pool{"tools": o.Pool, "system": o.System},
		Jobs: jobsDepth(o.System)}
	if o.Knowledge != nil {
		src.Backlog = o.Knowledge.Backlog
	}
	reg := newRegistry(src, o.Logger)
	if o.PoolWaits != nil {
		reg.MustRegister(o.PoolWaits.Collector())
	}
	m := &metrics{reg: reg, log: o.Logger}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", o.Auth.Require(m.handler()))
	opsRoutes(mux, o.Pool, o.System, nil)
	return mux
}

// jobsDepth counts the jobs through the pool River uses.
func jobsDepth(pool *pgxpool.Pool) func(ctx context.Context) (jobs.Depth, error) {
	return func(ctx context.Context) (jobs.Depth, error) { return jobs.QueueDepth(ctx, pool) }
}

// ProfileHandler serves Go's runtime profiles at /debug/pprof/ (go tool pprof reads them), behind
// v's token when it has one. cairn serves them only when an operator asks (--pprof-addr).
func ProfileHandler(v *auth.Verifier) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return v.Require(mux)
}
