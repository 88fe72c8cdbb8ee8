package mcp

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/eventstore"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// The audit log: every call of a tool that is not read-only (its ReadOnlyHint is false) is
// logged at info level as one structured line, "audit", with
//
//	user, role, transport   who called (the token's user; local:<os user> over stdio)
//	auth, issuer            how the user authenticated (token or jwt) and the JWT's issuer
//	tool, outcome           ok, tool_error (the caller's to fix, a denial included) or error
//	duration_ms
//	denied                  the missing permission, when the role refused the call
//	statements              how many SQL statements were checked (execute, transaction)
//	fingerprint             their pg_query fingerprints, comma-separated
//	statement               their text with every literal replaced by $n and comments
//	                        removed, "; "-separated
//	tables                  the relations they write or alter, as written
//	rows_affected           what the result reports (execute, transaction, insert_vector)
//
// Argument values and errors are never logged: parameters, literals, JSON state, error texts
// (PostgreSQL's details quote the values of a failed row) can hold secrets. With --audit-events
// the same record is appended to the event log as an AuditedToolCall event on the stream
// audit:<user>.

// auditEventTimeout bounds the append of an audit event after a call.
const auditEventTimeout = 5 * time.Second

// redaction is a statement's loggable form, cached by text: agents repeat their statements.
type redaction struct{ text, fingerprint string }

const maxRedactions = 4096

func (a *access) redact(sql string) redaction {
	a.redactMu.Lock()
	r, ok := a.redacted[sql]
	a.redactMu.Unlock()
	if ok {
		return r
	}
	r.text, r.fingerprint = sqlguard.Redact(sql)
	if len(sql) <= 8<<10 {
		a.redactMu.Lock()
		if len(a.redacted) >= maxRedactions {
			for k := range a.redacted {
				delete(a.redacted, k)
				break
			}
		}
		a.redacted[sql] = r
		a.redactMu.Unlock()
	}
	return r
}

// auditRecord is one audited call, as logged and as the event's data.
type auditRecord struct {
	User         string   `json:"user"`
	Auth         string   `json:"auth,omitempty"`
	Issuer       string   `json:"issuer,omitempty"`
	Role         string   `json:"role,omitempty"`
	Transport    string   `json:"transport"`
	Tool         string   `json:"tool"`
	Outcome      string   `json:"outcome"`
	DurationMS   float64  `json:"duration_ms"`
	Denied       string   `json:"denied,omitempty"`
	Fingerprints []string `json:"fingerprints,omitempty"`
	Statements   []string `json:"statements,omitempty"`
	Tables       []string `json:"tables,omitempty"`
	RowsAffected *int64   `json:"rows_affected,omitempty"`
}

func (a *access) auditCall(ctx context.Context, call *callState, res sdk.Result, err error, d time.Duration) {
	rec := auditRecord{
		User: call.caller.user, Auth: call.caller.auth, Issuer: call.caller.issuer, Role: call.caller.role, Transport: call.caller.transport, Tool: call.tool,
		Outcome: toolOutcome(res, err), DurationMS: float64(d.Microseconds()) / 1000,
	}
	if r, ok := res.(*sdk.CallToolResult); ok && r != nil {
		var denied *permissions.Denied
		if e := r.GetError(); e != nil && errors.As(e, &denied) {
			rec.Denied = denied.Missing
		}
		if !r.IsError {
			rec.RowsAffected = rowsAffected(r.StructuredContent)
		}
	}
	for _, st := range call.statements() {
		red := a.redact(st.Text)
		rec.Fingerprints = append(rec.Fingerprints, red.fingerprint)
		rec.Statements = append(rec.Statements, red.text)
		for _, acc := range st.Footprint.Accesses {
			if acc.Op != sqlguard.OpRead && !containsString(rec.Tables, acc.Table.String()) {
				rec.Tables = append(rec.Tables, acc.Table.String())
			}
		}
	}
	attrs := []slog.Attr{slog.String("user", rec.User)}
	if rec.Auth != "" {
		attrs = append(attrs, slog.String("auth", rec.Auth))
	}
	if rec.Issuer != "" {
		attrs = append(attrs, slog.String("issuer", rec.Issuer))
	}
	attrs = append(attrs, slog.String("role", rec.Role), slog.String("transport", rec.Transport),
		slog.String("tool", rec.Tool), slog.String("outcome", rec.Outcome), slog.Float64("duration_ms", rec.DurationMS))
	if rec.Denied != "" {
		attrs = append(attrs, slog.String("denied", rec.Denied))
	}
	if len(rec.Statements) > 0 {
		attrs = append(attrs, slog.Int("statements", len(rec.Statements)),
			slog.String("fingerprint", strings.Join(rec.Fingerprints, ",")),
			slog.String("statement", strings.Join(rec.Statements, "; ")))
	}
	if len(rec.Tables) > 0 {
		attrs = append(attrs, slog.String("tables", strings.Join(rec.Tables, ",")))
	}
	if rec.RowsAffected != nil {
		attrs = append(attrs, slog.Int64("rows_affected", *rec.RowsAffected))
	}
	a.log.LogAttrs(ctx, slog.LevelInfo, "audit", attrs...)

	if a.audit && a.pool != nil {
		a.appendAuditEvent(ctx, rec)
	}
}

// appendAuditEvent records the call in the event log. It runs after the call, outside its
// transaction: a failure is logged and does not change the call's result.
func (a *access) appendAuditEvent(ctx context.Context, rec auditRecord) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), auditEventTimeout)
	defer cancel()
	stream := "audit:" + rec.User
	if len(stream) > eventstore.MaxStreamIDLen {
		stream = stream[:eventstore.MaxStreamIDLen]
		for len(stream) > 0 && !isRuneStart(stream[len(stream)-1]) {
			stream = stream[:len(stream)-1]
		}
	}
	_, err := eventstore.Append(ctx, a.pool, stream, []eventstore.NewEvent{{
		Type: "AuditedToolCall", Data: rec, Metadata: eventstore.Metadata{Actor: rec.User},
	}}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion})
	if err != nil {
		a.log.Warn("audit event not recorded (the audit log line was written)", "tool", rec.Tool, "user", rec.User, "err", err)
	}
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }

func containsString(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// rowsAffected reads rows_affected from a result: execute's and insert_vector's own, or the sum
// over a transaction's results. nil when the result reports none.
func rowsAffected(structured any) *int64 {
	var raw []byte
	switch v := structured.(type) {
	case nil:
		return nil
	case json.RawMessage:
		raw = v
	case []byte:
		raw = v
	default:
		b, err := json.Marshal(v)
		if err != nil {
			return nil
		}
		raw = b
	}
	var r struct {
		RowsAffected *int64 `json:"rows_affected"`
		Results      []struct {
			RowsAffected int64 `json:"rows_affected"`
		} `json:"results"`
	}
	if json.Unmarshal(raw, &r) != nil {
		return nil
	}
	if r.RowsAffected != nil {
		return r.RowsAffected
	}
	if r.Results != nil {
		var n int64
		for _, x := range r.Results {
			n += x.RowsAffected
		}
		return &n
	}
	return nil
}
