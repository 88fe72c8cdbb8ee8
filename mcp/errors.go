package mcp

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/sqlexec"
)

// toolError is a result the model sees (isError) and can act on.
func toolError(err error) *sdk.CallToolResult {
	res := &sdk.CallToolResult{}
	res.SetError(err)
	return res
}

// logCallError logs a failed call: at debug level when it was the caller's to fix, as a warning
// when the database or cairn failed. The text of an error the caller can fix goes to the caller
// only: it may quote the call's values (PostgreSQL's detail quotes a failed row, its position
// hint the SQL around a literal), and secrets must not reach the log (audit.go).
func (s *Server) logCallError(ctx context.Context, tool string, err error) {
	if callersToFix(err) {
		s.log.Log(ctx, slog.LevelDebug, "tool call failed: the caller's to fix (the error is in the result)", "tool", tool)
		return
	}
	s.log.Log(ctx, slog.LevelWarn, "tool call failed", "tool", tool, "err", err)
}

// callersToFix reports whether an error is the caller's to fix rather than a fault.
func callersToFix(err error) bool {
	// Domain errors carry the callerr mark; server errors about the caller's SQL are
	// PostgreSQL's (sqlexec.IsInputError knows both).
	return sqlexec.IsInputError(err)
}

// recovered turns a panic in a handler into an error so that no panic reaches a client (or
// takes the server down); the stack goes to the log.
func (s *Server) recovered(tool string, p any) error {
	s.log.Error("panic in tool handler", "tool", tool, "panic", p, "stack", string(debug.Stack()))
	return fmt.Errorf("internal error in %s (logged by the server); the call may be retried, and if it repeats please report it", tool)
}

// typed wraps a typed handler with panic recovery and error logging.
func typed[In, Out any](s *Server, tool string, h func(context.Context, In) (Out, error)) sdk.ToolHandlerFor[In, Out] {
	return func(ctx context.Context, _ *sdk.CallToolRequest, in In) (res *sdk.CallToolResult, out Out, err error) {
		defer func() {
			if p := recover(); p != nil {
				err = s.recovered(tool, p)
			}
		}()
		if err = s.permitArgs(ctx, tool, in); err == nil {
			out, err = h(ctx, in)
		}
		if err != nil {
			s.logCallError(ctx, tool, err)
		}
		return nil, out, err
	}
}
