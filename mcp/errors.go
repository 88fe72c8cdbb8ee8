package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"runtime/debug"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/eventstore"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/sqlexec"
	"github.com/cairn-mcp/cairn/sqlexec/catalog"
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

// typed makes a tool handler of a typed one, with panic recovery and error logging. It does what
// the SDK's AddTool would do around h, less its two schema checks: the arguments were checked
// against the input schema already (checkArguments), and the result's schema is {"type":
// "object"}, which a Go struct always is. The SDK made the second check by decoding the whole
// encoded result again, which for a large checkpoint state cost more than the call itself.
func typed[In, Out any](s *Server, tool string, h func(context.Context, In) (Out, error)) sdk.ToolHandler {
	// A nil pointer result is sent as its element's zero value, as the SDK sends it: a JSON
	// object, never null.
	var elemZero any
	if t := reflect.TypeFor[Out](); t.Kind() == reflect.Pointer {
		elemZero = reflect.Zero(t.Elem()).Interface()
	}
	return func(ctx context.Context, req *sdk.CallToolRequest) (res *sdk.CallToolResult, err error) {
		defer func() {
			if p := recover(); p != nil {
				res, err = toolError(s.recovered(tool, p)), nil
			}
		}()
		var in In
		if args := req.Params.Arguments; len(args) > 0 {
			if err := json.Unmarshal(args, &in); err != nil {
				return toolError(&callerr.Input{Msg: fmt.Sprintf("%s: arguments: %v", tool, err)}), nil
			}
		}
		var out Out
		if err = s.permitArgs(ctx, tool, in); err == nil {
			out, err = h(ctx, in)
		}
		if err != nil {
			s.logCallError(ctx, tool, err)
			if wire, ok := err.(*jsonrpc.Error); ok {
				return nil, wire // a protocol error, as the SDK would send it
			}
			return toolError(outageFor(tool, err)), nil
		}
		var v any = out
		if elemZero != nil && reflect.ValueOf(out).IsNil() {
			v = elemZero
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("%s: encode the result: %w", tool, err)
		}
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: string(b)}},
			StructuredContent: json.RawMessage(b),
		}, nil
	}
}

// outageFor gives a failure to reach the database the advice that fits the tool (db.Outage:
// whether the call may have taken effect, and how to retry or check); the message names no
// database user, host or port. Other errors pass unchanged.
func outageFor(tool string, err error) error {
	o := db.AsOutage(err)
	if o == nil {
		return err
	}
	c := *o
	if c.Retry == "" {
		c.Retry = retryAdvice(tool, c.Effect)
	}
	return &c
}

// retryAdvice says how to go on after an outage interrupted a call of tool.
func retryAdvice(tool string, e db.Effect) string {
	const later = " once PostgreSQL answers again (/readyz)"
	if tp, ok := toolPerms[tool]; ok && tp.readOnly {
		return "a read is safe to retry" + later
	}
	if e != db.MaybeApplied {
		return "retry" + later
	}
	switch tool {
	case "checkpoint_save", "agent_record_execution", "knowledge_add_episode":
		return "retry with the same idempotency_key" + later + ": if the first call was applied, the retry answers with its result (duplicate: true) and writes nothing; without a key, look before retrying"
	case "knowledge_upsert_entity", "knowledge_relate":
		return "it is safe to retry" + later + ": the same upsert or fact again changes nothing"
	case "agent_register", "agent_update":
		return "check with agent_get before retrying" + later
	case "execute", "transaction", "insert_vector":
		return "check with query whether it took effect before retrying" + later
	}
	if strings.HasPrefix(tool, "workflow_") {
		return "check with workflow_get before retrying" + later
	}
	return "check whether it took effect before retrying" + later
}

// errorKind classifies a tool error for cairn_tool_errors_total: what a dashboard wants to tell
// apart (conflicts of racing writers, refusals, outages) without a label per message.
func errorKind(err error) string {
	var denied *permissions.Denied
	var limit *LimitError
	var conflict *eventstore.ConflictError
	var state *checkpoint.StateError
	switch {
	case err == nil:
		return "fault"
	case db.AsOutage(err) != nil:
		return "outage"
	case errors.As(err, &limit):
		return "limit"
	case errors.As(err, &denied):
		return "denied"
	case errors.As(err, &conflict):
		return "conflict"
	case errors.As(err, &state):
		return "state"
	case isNotFound(err):
		return "not_found"
	case callersToFix(err) || argumentError(err):
		return "input"
	}
	return "fault"
}

// isNotFound reports whether err says that what the call named does not exist, in any domain.
func isNotFound(err error) bool {
	var cp *checkpoint.NotFoundError
	var ag *agents.NotFoundError
	var kn *knowledge.NotFoundError
	var ca *catalog.NotFoundError
	return errors.As(err, &cp) || errors.As(err, &ag) || errors.As(err, &kn) || errors.As(err, &ca)
}
