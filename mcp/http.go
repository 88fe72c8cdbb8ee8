package mcp

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Handler serves MCP over HTTP: Streamable HTTP at /mcp, SSE at /sse, Prometheus metrics at
// /metrics, and /healthz (the process is up) and /readyz (the database answers) for load
// balancers. With an auth token set, /mcp, /sse and /metrics need "Authorization: Bearer <token>".
func (s *Server) Handler() http.Handler {
	get := func(*http.Request) *sdk.Server { return s.srv }
	// Stateless: any replica behind a load balancer can answer any request.
	streamable := sdk.NewStreamableHTTPHandler(get, &sdk.StreamableHTTPOptions{Stateless: true, Logger: slog.New(quietHandler{s.log.Handler(), slog.LevelWarn})})
	sse := sdk.NewSSEHandler(get, nil)

	mux := http.NewServeMux()
	mux.Handle("/mcp", s.guard(streamable))
	mux.Handle("/sse", s.guard(sse))
	// Unlike the health checks, metrics name the tools and agent templates in use and what agents
	// spent, which is more than a load balancer needs and more than anyone who can reach the port
	// should learn; Prometheus sends the token with "authorization: {credentials: ...}".
	mux.Handle("GET /metrics", s.guard(s.metrics.handler()))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.pool.Ping(ctx); err != nil {
			writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "error": "database: " + err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
	})
	return mux
}

// guard applies the browser and token checks to an MCP endpoint.
func (s *Server) guard(h http.Handler) http.Handler {
	h = http.NewCrossOriginProtection().Handler(h)
	h = checkOrigin(h)
	if tok := s.cfg.AuthToken; tok != "" {
		verify := func(_ context.Context, got string, _ *http.Request) (*auth.TokenInfo, error) {
			if subtle.ConstantTimeCompare([]byte(got), []byte(tok)) != 1 {
				return nil, auth.ErrInvalidToken
			}
			return &auth.TokenInfo{UserID: "token"}, nil
		}
		h = auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	}
	return h
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
	json.NewEncoder(w).Encode(v)
}
