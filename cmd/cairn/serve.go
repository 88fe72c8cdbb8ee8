package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/sqlexec"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/mcp"
)

func serveCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "transport", Value: config.TransportStdio, EnvVars: []string{"CAIRN_TRANSPORT"}, Usage: "stdio, sse (served at /sse) or http (Streamable HTTP at /mcp)"},
		&cli.StringFlag{Name: "addr", Value: config.DefaultAddr, EnvVars: []string{"CAIRN_ADDR"}, Usage: "listen address of the sse and http transports"},
		&cli.StringFlag{Name: "auth-token", EnvVars: []string{"CAIRN_AUTH_TOKEN"}, Usage: "bearer token the HTTP transports require (needed to listen beyond loopback)"},
		&cli.BoolFlag{Name: "read-only", EnvVars: []string{"CAIRN_READ_ONLY"}, Usage: "refuse every write (execute, transaction, insert_vector)"},
		&cli.IntFlag{Name: "max-rows", Value: config.DefaultMaxRows, EnvVars: []string{"CAIRN_MAX_ROWS"}, Usage: "most rows a result returns; the rest is cut and marked truncated"},
		&cli.StringSliceFlag{Name: "toolsets", EnvVars: []string{"CAIRN_TOOLSETS"}, Usage: "tool groups to expose, comma-separated (available: " + strings.Join(config.Toolsets, ", ") + "; default all)"},
		noMigrateFlag,
	}, jobFlags, dbFlags)
	return &cli.Command{
		Name:  "serve",
		Usage: "serve the MCP tools (stdio by default) and work background jobs",
		Description: `Examples:
   cairn serve
   cairn serve --transport http --addr 127.0.0.1:8080
   CAIRN_AUTH_TOKEN=$(cat token) cairn serve --transport sse --addr 0.0.0.0:8080`,
		Flags:  flags,
		Action: serve,
	}
}

// toolConfig reads the settings of the MCP server that do not depend on the transport (serve,
// call): database, read-only, row cap, toolsets, --no-migrate.
func toolConfig(c *cli.Context) *config.Config {
	cfg := configFrom(c)
	cfg.ReadOnly = c.Bool("read-only")
	cfg.MaxRows = c.Int("max-rows")
	cfg.NoMigrate = c.Bool("no-migrate")
	for _, ts := range c.StringSlice("toolsets") {
		for _, t := range strings.Split(ts, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Toolsets = append(cfg.Toolsets, t)
			}
		}
	}
	return cfg
}

// newServer builds cairn's MCP server on pool: what serve serves and call calls.
func newServer(ctx context.Context, pool *pgxpool.Pool, cfg *config.Config, kg *knowledge.Store) (*mcp.Server, error) {
	log := slog.Default()
	run, err := sqlexec.New(ctx, pool, sqlexec.Options{MaxRows: cfg.MaxRows, ReadOnly: cfg.ReadOnly, Logger: log})
	if err != nil {
		return nil, err
	}
	return mcp.New(mcp.Options{Config: cfg, Pool: pool, Runner: run, Knowledge: kg, Logger: log, Version: cairnVersion()}), nil
}

func serve(c *cli.Context) error {
	cfg := toolConfig(c)
	cfg.Transport = c.String("transport")
	cfg.Addr = c.String("addr")
	cfg.AuthToken = c.String("auth-token")
	if err := cfg.Normalize(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	jobOpts, err := jobOptions(c)
	if err != nil {
		return err
	}
	ctx := c.Context
	log := slog.Default()

	// Listen before connecting so that a taken port fails at once.
	var ln net.Listener
	if cfg.Transport != config.TransportStdio {
		var err error
		if ln, err = net.Listen("tcp", cfg.Addr); err != nil {
			return cli.Exit(fmt.Sprintf("listen on %s: %v", cfg.Addr, err), 1)
		}
		defer ln.Close()
	}

	bg, err := startBackground(c, cfg, jobOpts)
	if err != nil {
		return err
	}
	pool := bg.pool
	defer pool.Close()
	// Deferred after pool.Close, so it runs first: once the transport is done, jobs in flight
	// finish while the pool is still open.
	defer stopJobs(bg.jobs, log)
	srv, err := newServer(ctx, pool, cfg, bg.knowledge)
	if err != nil {
		return err
	}
	defer srv.Close() // deferred last, so it runs first: the subscription listener lets go before the pool closes

	if cfg.Transport == config.TransportStdio {
		log.Info("serving MCP over stdio", "version", cairnVersion(), "read_only", cfg.ReadOnly)
		err := srv.ServeStdio(ctx)
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			return fmt.Errorf("stdio transport: %w", err)
		}
		return nil
	}
	return serveHTTP(ctx, ln, srv, cfg, log)
}

// serveHTTP serves until ctx ends (SIGINT/SIGTERM), then stops accepting, lets calls in flight
// finish for up to 15 seconds, and returns.
func serveHTTP(ctx context.Context, ln net.Listener, srv *mcp.Server, cfg *config.Config, log *slog.Logger) error {
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	path := "/mcp"
	if cfg.Transport == config.TransportSSE {
		path = "/sse"
	}
	log.Info("serving MCP over HTTP", "transport", cfg.Transport, "url", "http://"+ln.Addr().String()+path,
		"also", "/mcp (Streamable HTTP), /sse (SSE), /healthz, /readyz", "auth", cfg.AuthToken != "", "version", cairnVersion())
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
	hs.RegisterOnShutdown(func() { srv.Drain(sctx) })
	if err := hs.Shutdown(sctx); err != nil {
		log.Warn("graceful shutdown incomplete; closing open streams", "err", err)
		hs.Close()
	}
	return nil
}
