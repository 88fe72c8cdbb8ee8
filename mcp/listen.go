package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/permissions"
)

// ServeListener serves the HTTP transports (and /healthz, /readyz, /metrics, GET /) on ln until
// ctx ends (SIGINT/SIGTERM), then stops accepting, lets calls in flight finish for up to 15
// seconds, and returns.
func (s *Server) ServeListener(ctx context.Context, ln net.Listener) error {
	log, cfg := s.log, s.cfg
	hs := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	path := "/mcp"
	if cfg.Transport == config.TransportSSE {
		path = "/sse"
	}
	log.Info("serving MCP over HTTP", "transport", cfg.Transport, "url", "http://"+ln.Addr().String()+path,
		"also", "/mcp (Streamable HTTP), /sse (SSE), /healthz, /readyz", "auth", cfg.AuthConfigured(), "version", s.opts.Version)
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("http server: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing calls in flight")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Shutdown stops accepting and waits for open requests; SSE streams stay open until their
	// sessions close, which Drain does once the calls in flight have answered.
	hs.RegisterOnShutdown(func() { s.Drain(sctx) })
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown incomplete; closing open streams", "err", err)
		hs.Close()
	}
	return nil
}

// OpsEndpoint is a listener for operators' endpoints (a worker's /healthz, /readyz and
// /metrics; Go's profiles) and who may read them.
type OpsEndpoint struct {
	Listener net.Listener
	Auth     *auth.Verifier
}

// ListenOps listens on addr, the value of the setting named flag, for what (the paths served, for
// the message): beyond loopback only with a token in cfg, which then guards it. Settings that
// cannot work are *config.UsageError.
func ListenOps(addr, flag, what string, cfg *config.Config, log *slog.Logger) (OpsEndpoint, error) {
	loopback, err := config.IsLoopbackAddr(addr)
	if err != nil {
		return OpsEndpoint{}, &config.UsageError{Err: fmt.Errorf("%s %q: %w", flag, addr, err)}
	}
	if !loopback && !cfg.AuthConfigured() {
		return OpsEndpoint{}, &config.UsageError{Err: fmt.Errorf("%s %s listens beyond loopback: set --auth-token (CAIRN_AUTH_TOKEN) or a token file so that %s is not open to anyone", flag, addr, what)}
	}
	ao, err := auth.OptionsFromConfig(cfg, log)
	if err != nil {
		return OpsEndpoint{}, &config.UsageError{Err: err}
	}
	v, err := auth.New(ao)
	if err != nil {
		return OpsEndpoint{}, &config.UsageError{Err: err}
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return OpsEndpoint{}, fmt.Errorf("%s: listen on %s: %w", flag, addr, err)
	}
	return OpsEndpoint{Listener: ln, Auth: v}, nil
}

// ServeOps serves h on ln in the background until ctx ends, with the timeouts and error log of
// cairn's other HTTP servers.
func ServeOps(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	go func() { _ = hs.Serve(ln) }() // it returns when ctx closes it
	context.AfterFunc(ctx, func() { hs.Close() })
}

// ServeProfiles serves Go's profiles on ep until ctx ends, for an operator who wants to see where
// the process's time goes.
func ServeProfiles(ctx context.Context, ep OpsEndpoint, log *slog.Logger) {
	ServeOps(ctx, ep.Listener, ProfileHandler(ep.Auth), log)
	log.Warn("serving Go's profiles: they show what the process does, not data, but cost CPU while taken",
		"url", "http://"+ep.Listener.Addr().String()+"/debug/pprof/", "auth", ep.Auth.Enabled())
}

// NewVerifier checks the authentication settings of the HTTP transports (reading the token file)
// now rather than at the first request, and warns about roles the permissions (perms, nil
// without a file) lack: a token with such a role works for nothing.
func NewVerifier(cfg *config.Config, perms *permissions.Set, log *slog.Logger) (*auth.Verifier, error) {
	ao, err := auth.OptionsFromConfig(cfg, log)
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	v, err := auth.New(ao)
	if err != nil {
		return nil, &config.UsageError{Err: err}
	}
	log.Info("authentication of the HTTP transports", "modes", v.Describe())
	if perms == nil {
		return v, nil
	}
	for _, t := range ao.Tokens {
		if !perms.HasRole(t.Role) {
			log.Warn("a token's role is not in the permissions file: its every call will be refused", "token", t.Name, "role", t.Role, "roles", perms.Roles())
		}
	}
	if ao.DefaultRole != "" && !perms.HasRole(ao.DefaultRole) {
		log.Warn("--auth-default-role is not in the permissions file: JWTs without a role claim will be refused", "role", ao.DefaultRole, "roles", perms.Roles())
	}
	return v, nil
}
