package mcp

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"time"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/logging"
)

// Handler serves MCP over HTTP: Streamable HTTP at /mcp, SSE at /sse, Prometheus metrics at
// /metrics, and /healthz (the process is up) and /readyz (the database answers) for load
// balancers. With authentication configured (static tokens, JWTs), /mcp, /sse and /metrics need
// "Authorization: Bearer <token>"; with an issuer, the protected resource metadata (RFC 9728)
// is served at /.well-known/oauth-protected-resource.
func (s *Server) Handler() http.Handler {
	get := func(*http.Request) *sdk.Server { return s.srv }
	// Stateless: any replica behind a load balancer can answer any request. JSONResponse: a call
	// is answered with a plain JSON body rather than an event stream, a tenth less CPU per call
	// (docs/BENCHMARKS.md), as no tool sends notifications while it runs; subscriptions/listen,
	// which does, stays an event stream (the SDK sees to that).
	streamable := sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{Stateless: true, JSONResponse: true,
		Logger: slog.New(logging.MinLevel{Handler: s.log.Handler(), Min: slog.LevelWarn})})
	sse := sdk.NewSSEHandler(get, nil)
	v := s.verifier()

	mux := http.NewServeMux()
	mux.Handle("/mcp", s.guard(v, s.admit.sessionGate(streamable)))
	// The SDK does not bind SSE sessions to a user (it does Streamable HTTP ones); bindSSE does.
	mux.Handle("/sse", s.guard(v, s.admit.sessionGate(bindSSE(sse))))
	// Unlike the health checks, metrics name the tools and agent templates in use and what agents
	// spent, which is more than a load balancer needs and more than anyone who can reach the port
	// should learn; Prometheus sends the token with "authorization: {credentials: ...}".
	mux.Handle("GET /metrics", s.guard(v, s.metrics.handler()))
	if meta := v.MetadataHandler(); meta != nil {
		// Public (no token, any origin): clients read it to learn where to get a token.
		mux.Handle(auth.MetadataPath, meta)
		mux.Handle(auth.MetadataPath+"/", meta)
	}
	// Public: without a token it tells only what a client needs to connect, not where the data
	// lives (the database's user and host are the operator's business).
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { s.root(w, r, v.Enabled()) })
	opsRoutes(mux, s.pool, s.system, s.startState)
	return mux
}

// opsRoutes adds the endpoints a load balancer asks: /healthz (the process is up) and /readyz.
// state, when set, says whether the process has started (ok) or why not.
func opsRoutes(mux *http.ServeMux, pool, system *pgxpool.Pool, state func() (ok bool, why string)) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if state != nil {
			if ok, why := state(); !ok {
				writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "error": why})
				return
			}
		}
		ready(w, r, pool, system)
	})
}

// ready answers /readyz: unavailable only when PostgreSQL does not answer (asked on the system
// pool, which tool calls cannot take), and ready otherwise, saying whether the pool of tool
// calls is saturated — a busy replica is still a healthy one, and a load balancer that pulled
// every busy replica would take the whole service down under load.
func ready(w http.ResponseWriter, r *http.Request, pool, system *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := system.Ping(ctx); err != nil {
		reason := "PostgreSQL did not answer within 2s"
		if o := db.AsOutage(err); o != nil {
			reason = o.Reason
		}
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "database: " + reason})
		return
	}
	st := pool.Stat()
	state := "ok"
	if st.AcquiredConns() >= st.MaxConns() {
		state = "saturated"
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "pool": state, "pool_in_use": st.AcquiredConns(), "pool_max": st.MaxConns()})
}

// guard applies the browser and token checks to an MCP endpoint.
func (s *Server) guard(v *auth.Verifier, h http.Handler) http.Handler {
	h = http.NewCrossOriginProtection().Handler(h)
	h = checkOrigin(h)
	return v.Require(h)
}

// verifier is Options.Auth, else the verifier the configuration describes. A configuration it
// cannot build (serve reports that at start) locks the endpoints rather than opening them.
func (s *Server) verifier() *auth.Verifier {
	if s.opts.Auth != nil {
		return s.opts.Auth
	}
	v, err := auth.FromConfig(s.cfg, s.log)
	if err != nil {
		s.log.Error("authentication is misconfigured: every request to /mcp, /sse and /metrics is refused", "err", err)
		v, _ = auth.New(auth.Options{Tokens: []auth.StaticToken{{Name: "locked", Role: "none", Token: rand.Text() + rand.Text()}}, Logger: s.log})
	}
	return v
}

// bindSSE binds each SSE session to the identity whose token opened it — how it authenticated,
// the issuer and the user — and to its role: a message posted to the session with a credential
// of another identity, or of the same one with another role, is refused (403). Tools run in the
// context of the GET that opened the session, so the poster's role must be the opener's for
// every call to run with the role of the credential on the request. Without authentication it
// changes nothing.
func bindSSE(h http.Handler) http.Handler {
	var mu sync.Mutex
	owners := map[string]auth.Identity{} // session id → who opened it
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ti := sdkauth.TokenInfoFromContext(r.Context())
		if ti == nil {
			h.ServeHTTP(w, r)
			return
		}
		id := auth.FromTokenInfo(ti)
		switch r.Method {
		case http.MethodGet:
			// The SDK names the new session in the first event it writes ("endpoint").
			sw := &sessionSniffer{ResponseWriter: w}
			sw.onID = func(sid string) {
				mu.Lock()
				owners[sid] = id
				mu.Unlock()
			}
			defer func() {
				if sw.id != "" {
					mu.Lock()
					delete(owners, sw.id)
					mu.Unlock()
				}
			}()
			h.ServeHTTP(sw, r)
		case http.MethodPost:
			sid := r.URL.Query().Get("sessionid")
			mu.Lock()
			owner, known := owners[sid]
			mu.Unlock()
			switch {
			case sid == "":
				h.ServeHTTP(w, r) // the SDK says what is missing
			case !known:
				http.Error(w, "session not found", http.StatusNotFound)
			case owner.Principal() != id.Principal():
				http.Error(w, "session identity mismatch: the session belongs to the identity that opened it (how it authenticated, its issuer and user); open your own session", http.StatusForbidden)
			case owner.Role != id.Role:
				http.Error(w, fmt.Sprintf("session role mismatch: the session was opened with role %q and this token has role %q; open a new session with this token", owner.Role, id.Role), http.StatusForbidden)
			default:
				h.ServeHTTP(w, r)
			}
		default:
			h.ServeHTTP(w, r)
		}
	})
}

// sessionSniffer passes an SSE stream through, reading the session id from the endpoint event
// ("event: endpoint\ndata: /sse?sessionid=…"). Unwrap lets the SDK flush through it.
type sessionSniffer struct {
	http.ResponseWriter
	id   string
	onID func(string)
}

func (s *sessionSniffer) Write(p []byte) (int, error) {
	if s.id == "" {
		for _, line := range strings.Split(string(p), "\n") {
			data, isData := strings.CutPrefix(line, "data: ")
			if !isData {
				continue
			}
			if u, err := url.Parse(strings.TrimSpace(data)); err == nil {
				if id := u.Query().Get("sessionid"); id != "" {
					s.id = id
					s.onID(id)
					break
				}
			}
		}
	}
	return s.ResponseWriter.Write(p)
}

func (s *sessionSniffer) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// sseTokenInfo gives a request that arrives over SSE the caller's TokenInfo in req.Extra, as
// Streamable HTTP requests have it: the SDK's SSE transport leaves Extra nil, but its handlers
// run in the context of the GET that opened the session, which carries the TokenInfo of the
// user the session is bound to (bindSSE). Tools read the caller with
// auth.FromTokenInfo(req.Extra.TokenInfo) whatever the transport.
func sseTokenInfo(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if ti := sdkauth.TokenInfoFromContext(ctx); ti != nil {
			if ex := req.GetExtra(); ex != nil {
				if ex.TokenInfo == nil {
					ex.TokenInfo = ti
				}
			} else if v := reflect.ValueOf(req); v.Kind() == reflect.Pointer && !v.IsNil() && v.Elem().Kind() == reflect.Struct {
				// Every *sdk.ServerRequest[P] has an exported Extra field.
				if f := v.Elem().FieldByName("Extra"); f.IsValid() && f.CanSet() && f.Type() == reflect.TypeFor[*sdk.RequestExtra]() {
					f.Set(reflect.ValueOf(&sdk.RequestExtra{TokenInfo: ti}))
				}
			}
		}
		return next(ctx, method, req)
	}
}

// checkOrigin refuses browser requests from another origin (a web page the user happens to have
// open must not drive a local database). Requests without an Origin header — every non-browser
// client — pass.
func checkOrigin(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o := r.Header.Get("Origin"); o != "" {
			u, err := url.Parse(o)
			if err != nil || !strings.EqualFold(u.Host, r.Host) {
				http.Error(w, "cross-origin request refused: Origin "+o+" does not match "+r.Host, http.StatusForbidden)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v) // a client that went away cannot be told
}
