package mcp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cairn-mcp/cairn/internal/auth"
)

// Admission control keeps one caller from starving the others: each caller — the identity of
// its token over HTTP (how it authenticated, the issuer and the user), its address when the
// server needs no token, the operating-system user over stdio — may have at most so many tool
// calls in flight (each may hold a pooled connection; by default half the pool) and so many
// open sessions (SSE streams and Streamable HTTP requests). A call beyond the bound waits a
// short while for one of the caller's own calls to finish, then gets a tool error that says
// which limit it hit and which flag raises it; a session beyond the bound is refused with 429.

// AdmissionOptions are the limits; zero values are the defaults.
type AdmissionOptions struct {
	// MaxCalls is how many tool calls one caller may have in flight; default half the
	// connection pool (at least 1).
	MaxCalls int
	// MaxSessions is how many SSE streams and Streamable HTTP requests one caller may have
	// open; default DefaultMaxSessions.
	MaxSessions int
	// Wait is how long a call over the bound waits for a slot; default DefaultAdmissionWait.
	Wait time.Duration
}

// Defaults of AdmissionOptions.
const (
	DefaultMaxSessions   = 32
	DefaultAdmissionWait = 2 * time.Second
)

// admission keeps the calls and sessions of each caller.
type admission struct {
	maxCalls, maxSessions int
	wait                  time.Duration

	mu      sync.Mutex
	callers map[string]*callerLoad

	waits    prometheus.Histogram
	rejected *prometheus.CounterVec
	sessions *prometheus.GaugeVec
}

// callerLoad is what one caller holds: a slot in calls per call in flight, and its sessions.
type callerLoad struct {
	calls    chan struct{}
	sessions int
}

func newAdmission(o AdmissionOptions, poolMax int) *admission {
	if o.MaxCalls <= 0 {
		o.MaxCalls = max(1, poolMax/2)
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	if o.Wait <= 0 {
		o.Wait = DefaultAdmissionWait
	}
	return &admission{
		maxCalls: o.MaxCalls, maxSessions: o.MaxSessions, wait: o.Wait, callers: map[string]*callerLoad{},
		waits: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cairn_admission_wait_seconds",
			Help:    "Time a tool call waited for one of its caller's call slots (--max-calls-per-caller), refused calls included.",
			Buckets: []float64{.0001, .001, .005, .01, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cairn_admission_rejected_total",
			Help: "Tool calls and sessions refused because their caller was at its limit, by reason: calls or sessions.",
		}, []string{"reason"}),
		sessions: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "cairn_sessions_open",
			Help: "Open SSE streams and Streamable HTTP requests, by caller.",
		}, []string{"caller"}),
	}
}

func (a *admission) collectors() []prometheus.Collector {
	return []prometheus.Collector{a.waits, a.rejected, a.sessions}
}

func (a *admission) load(key string) *callerLoad {
	l := a.callers[key]
	if l == nil {
		l = &callerLoad{calls: make(chan struct{}, a.maxCalls)}
		a.callers[key] = l
	}
	return l
}

// forget drops a caller that holds nothing, so the map does not grow with every caller seen.
func (a *admission) forgetLocked(key string, l *callerLoad) {
	if len(l.calls) == 0 && l.sessions == 0 {
		delete(a.callers, key)
	}
}

// LimitError is a call or session refused because its caller is at a limit. It is temporary:
// the same call succeeds once some of the caller's own calls have finished.
type LimitError struct {
	Caller string
	// Limit names what was at its bound: "calls" or "sessions".
	Limit string
	Max   int
	Wait  time.Duration
}

func (e *LimitError) Error() string {
	if e.Limit == "sessions" {
		return fmt.Sprintf("too many open sessions for caller %s: %d (the limit, --max-sessions-per-caller / CAIRN_MAX_SESSIONS_PER_CALLER); close some (SSE streams, requests in progress) and retry", e.Caller, e.Max)
	}
	return fmt.Sprintf("cairn is busy with this caller's other calls: %d of %d calls in flight for %s (--max-calls-per-caller / CAIRN_MAX_CALLS_PER_CALLER), and none finished within %s (--admission-wait); this call was not run — retry once some have finished",
		e.Max, e.Max, e.Caller, e.Wait)
}

// admitCall takes a call slot of the caller, waiting up to a.wait; release gives it back.
func (a *admission) admitCall(ctx context.Context, key string) (release func(), err error) {
	start := time.Now()
	a.mu.Lock()
	l := a.load(key)
	a.mu.Unlock()
	release = func() {
		a.mu.Lock()
		<-l.calls
		a.forgetLocked(key, l)
		a.mu.Unlock()
	}
	select {
	case l.calls <- struct{}{}:
		a.waits.Observe(time.Since(start).Seconds())
		return release, nil
	default:
	}
	t := time.NewTimer(a.wait)
	defer t.Stop()
	select {
	case l.calls <- struct{}{}:
		a.waits.Observe(time.Since(start).Seconds())
		return release, nil
	case <-t.C:
	case <-ctx.Done():
	}
	a.waits.Observe(time.Since(start).Seconds())
	a.rejected.WithLabelValues("calls").Inc()
	a.mu.Lock()
	a.forgetLocked(key, l)
	a.mu.Unlock()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, &LimitError{Caller: key, Limit: "calls", Max: a.maxCalls, Wait: a.wait}
}

// sessionGate counts the caller's open sessions on an HTTP endpoint (an SSE stream for as long
// as it is open, a Streamable HTTP request while it runs), refuses one beyond the bound with
// 429, and puts the caller's key in the request's context for admitCall.
func (a *admission) sessionGate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A message posted to an SSE session belongs to that session.
		if r.Method == http.MethodPost && r.URL.Query().Get("sessionid") != "" {
			next.ServeHTTP(w, r.WithContext(withCallerKey(r.Context(), httpCaller(r))))
			return
		}
		key := httpCaller(r)
		a.mu.Lock()
		l := a.load(key)
		if l.sessions >= a.maxSessions {
			a.forgetLocked(key, l)
			a.mu.Unlock()
			a.rejected.WithLabelValues("sessions").Inc()
			w.Header().Set("Retry-After", "1")
			http.Error(w, (&LimitError{Caller: key, Limit: "sessions", Max: a.maxSessions}).Error(), http.StatusTooManyRequests)
			return
		}
		l.sessions++
		a.sessions.WithLabelValues(key).Set(float64(l.sessions))
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			l.sessions--
			if l.sessions == 0 {
				a.sessions.DeleteLabelValues(key)
			} else {
				a.sessions.WithLabelValues(key).Set(float64(l.sessions))
			}
			a.forgetLocked(key, l)
			a.mu.Unlock()
		}()
		next.ServeHTTP(w, r.WithContext(withCallerKey(r.Context(), key)))
	})
}

// httpCaller names the caller of an HTTP request: its token's identity, else its address.
func httpCaller(r *http.Request) string {
	if ti := sdkauth.TokenInfoFromContext(r.Context()); ti != nil {
		return auth.FromTokenInfo(ti).Principal()
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "address:" + host
}

type callerKeyCtx struct{}

func withCallerKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, callerKeyCtx{}, key)
}

// callerKey is the admission key of a call: set by sessionGate over HTTP, else c's (stdio).
func callerKey(ctx context.Context, c caller) string {
	if k, ok := ctx.Value(callerKeyCtx{}).(string); ok {
		return k
	}
	if c.auth != "" {
		return auth.Identity{User: c.user, Method: c.auth, Issuer: c.issuer}.Principal()
	}
	return c.user
}

// middleware holds each tool call to its caller's limit.
func (a *admission) middleware(callerOf func(context.Context, sdk.Request) caller) sdk.Middleware {
	return func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if _, isCall := req.(*sdk.CallToolRequest); !isCall {
				return next(ctx, method, req)
			}
			release, err := a.admitCall(ctx, callerKey(ctx, callerOf(ctx, req)))
			if err != nil {
				return toolError(err), nil
			}
			defer release()
			return next(ctx, method, req)
		}
	}
}
