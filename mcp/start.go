package mcp

import (
	"context"
	"fmt"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// A server built with Options.Pending answers initialize and the lists at once, while what
// takes the database to make (the connections, the schema check, the embedder's choice) is
// still being made: a client spawning cairn is not kept waiting for PostgreSQL. Calls that need
// the database wait for Started; if starting failed they get its error.

// Started is what a pending server receives once the database has answered.
type Started struct {
	Runner    *sqlexec.Runner
	Knowledge *knowledge.Store // nil: a store on Pool without an embedder, as in New
	About     About
}

// startGate holds a pending server's calls until it has started.
type startGate struct {
	done chan struct{} // closed by Started
	err  error         // why starting failed; written before done is closed
}

// Started ends a pending server's start: with err nil it serves calls with st; otherwise every
// call that needs the database fails with err. It must be called once, and only on a server
// built with Options.Pending.
func (s *Server) Started(st Started, err error) {
	if err == nil {
		s.run = st.Runner
		if st.Knowledge != nil {
			s.knowledge = st.Knowledge
		}
		s.about.Store(&st.About)
	}
	s.gate.err = err
	close(s.gate.done)
}

// started reports whether the server can serve calls: at once when it was not built pending,
// else once Started has been called (nil) or ctx ends.
func (s *Server) started(ctx context.Context) error {
	if s.gate == nil {
		return nil
	}
	select {
	case <-s.gate.done: // every call once started: no timer to make
		return s.startErr()
	default:
	}
	t := time.NewTimer(startWait)
	defer t.Stop()
	select {
	case <-s.gate.done:
		return s.startErr()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return &callerr.Input{Msg: fmt.Sprintf("cairn is still starting after %s (connecting to PostgreSQL, checking its schema, choosing the embedder); retry in a moment, and if it persists see cairn's log", startWait)}
	}
}

// startErr is why a pending server that has been started cannot serve calls, or nil.
func (s *Server) startErr() error {
	if s.gate.err != nil {
		return fmt.Errorf("cairn could not start: %w", s.gate.err)
	}
	return nil
}

// startWait is the longest a call waits for a pending server to start.
const startWait = 30 * time.Second

// startState says for /readyz whether the server has started, and if not, why.
func (s *Server) startState() (bool, string) {
	if s.gate == nil {
		return true, ""
	}
	select {
	case <-s.gate.done:
		if s.gate.err != nil {
			return false, "cairn could not start: " + s.gate.err.Error()
		}
		return true, ""
	default:
		return false, "cairn is starting: connecting to PostgreSQL and checking its schema"
	}
}

// waitForStart is the receiving middleware that holds the requests that need the database
// until the server has started; initialize, ping and the lists never wait.
func (s *Server) waitForStart(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch method {
		case "tools/call", "resources/read", "resources/subscribe", "prompts/get", "completion/complete":
			if err := s.started(ctx); err != nil {
				if method == "tools/call" {
					return toolError(err), nil
				}
				return nil, err
			}
		}
		return next(ctx, method, req)
	}
}

// aboutNow is About as it is known now: the version alone until a pending server has started.
func (s *Server) aboutNow() About {
	if a := s.about.Load(); a != nil {
		return *a
	}
	return About{Version: s.opts.Version}
}

// Start ends a pending server's start once the database has answered: it makes the SQL runner
// on the server's pool and lets the calls through with kg (nil: a store without an embedder)
// and about. With err set (the start failed) the calls fail with it, which Start returns.
func (s *Server) Start(ctx context.Context, kg *knowledge.Store, about About, err error) error {
	var run *sqlexec.Runner
	if err == nil {
		sqlguard.Warm()
		run, err = sqlexec.New(ctx, s.pool, sqlexec.Options{MaxRows: s.cfg.MaxRows, MaxResultBytes: s.cfg.MaxResultBytes, ReadOnly: s.cfg.ReadOnly, Logger: s.log})
	}
	s.Started(Started{Runner: run, Knowledge: kg, About: about}, err)
	return err
}
