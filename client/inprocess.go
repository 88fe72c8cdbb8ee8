package client

import (
	"context"
	"fmt"
	"log/slog"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/backend"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/mcp"
)

// InProcessOptions build the server of InProcess.
type InProcessOptions struct {
	// Config is the tools' configuration, normalized; with no database configured the embedded
	// cluster in DataDir is used.
	Config  *config.Config
	DataDir string
	// Permissions are serve's: a caller who configured them expects every entry point to honour
	// them. Nil lets everything through.
	Permissions *permissions.Set
	// Knowledge chooses the embedder that search embeds queries with.
	Knowledge backend.KnowledgeOptions
	Version   string
}

// InProcess builds cairn's MCP server on the configured database, as serve does but without
// job workers (writes still queue their jobs for a server or worker to work), and connects a
// client to it in memory: arguments are checked and results encoded exactly as a client of
// serve sees them. Closing the session closes the server and the pool.
func InProcess(ctx context.Context, o InProcessOptions) (s *Session, err error) {
	log := slog.Default()
	pool, err := backend.Connect(ctx, o.Config, o.DataDir, "")
	if err != nil {
		return nil, err
	}
	s = &Session{closers: []func(){pool.Close}}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if err := backend.PrepareSchema(ctx, pool, o.Config.NoMigrate, log); err != nil {
		return nil, err
	}
	kg, err := backend.OpenKnowledge(ctx, pool, o.Knowledge)
	if err != nil {
		return nil, err
	}
	srv := mcp.New(mcp.Options{Config: o.Config, Pool: pool, System: pool, Logger: log, Version: o.Version,
		Permissions: o.Permissions, Pending: true})
	s.closers = append(s.closers, srv.Close)
	if err := srv.Start(ctx, kg.Store, mcp.About{}, nil); err != nil {
		return nil, err
	}
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(ctx, st, nil)
	if err != nil {
		return nil, fmt.Errorf("start the in-process MCP server: %w", err)
	}
	s.closers = append(s.closers, func() {
		_ = ss.Close()
		_ = ss.Wait() // how the session ended does not matter, only that it did
	})
	cs, err := newClient(o.Version).Connect(ctx, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("connect to the in-process MCP server: %w", err)
	}
	s.closers = append(s.closers, func() { _ = cs.Close() })
	s.ClientSession = cs
	return s, nil
}
