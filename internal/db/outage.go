package db

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Outage is a call that failed because the database could not be reached or the connection
// broke, as every tool tells it: whether the call may have taken effect, PostgreSQL's own reason
// when it gave one, and what to do. It names no user, host or port; the error it wraps (for the
// server log) may.
type Outage struct {
	// Effect says whether the call may have taken effect.
	Effect Effect
	// Reason is PostgreSQL's message when it sent one ("the database system is starting up"),
	// else a short description of what failed.
	Reason string
	// Retry says how to retry safely or how to check; set by the front end for its call. Empty:
	// a generic hint.
	Retry string
	err   error
}

// Effect is what an interrupted call may have done.
type Effect int

const (
	// NotRun: the failure came before anything was sent (connecting, a server that is starting
	// or shutting down, a full server).
	NotRun Effect = iota
	// NotApplied: something was sent, but nothing it did can have lasted (a read, or a
	// transaction that never got to COMMIT).
	NotApplied
	// MaybeApplied: a write or a COMMIT was sent and whether it committed is unknown.
	MaybeApplied
)

func (o *Outage) Error() string {
	var b strings.Builder
	switch o.Effect {
	case MaybeApplied:
		b.WriteString("the database connection failed after the call was sent (" + o.Reason + "), so it may or may not have been applied")
	case NotApplied:
		b.WriteString("the database connection failed during the call (" + o.Reason + "); nothing was changed")
	default:
		b.WriteString("the database is unavailable (" + o.Reason + "); nothing was run")
	}
	b.WriteString("; ")
	switch {
	case o.Retry != "":
		b.WriteString(o.Retry)
	case o.Effect == MaybeApplied:
		b.WriteString("check whether it took effect before retrying, once PostgreSQL answers again (/readyz)")
	default:
		b.WriteString("retry once PostgreSQL answers again (/readyz)")
	}
	return b.String()
}

// NoEffect returns a copy of o that says nothing can have lasted, for callers that know the
// call's writes were never committed; nil stays nil.
func (o *Outage) NoEffect() *Outage {
	if o == nil {
		return nil
	}
	c := *o
	if c.Effect == MaybeApplied {
		c.Effect = NotApplied
	}
	return &c
}

// Unwrap returns the error as the driver reported it.
func (o *Outage) Unwrap() error { return o.err }

// AsOutage returns err as an *Outage if it is a failure to reach the database or a broken
// connection, else nil. A cancelled or timed-out context is not an outage (the caller gave up),
// and neither is an error PostgreSQL reports about a statement.
func AsOutage(err error) *Outage {
	if err == nil {
		return nil
	}
	var o *Outage
	if errors.As(err, &o) {
		return o
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	var pe *pgconn.PgError
	pgErr := errors.As(err, &pe)
	var ce *pgconn.ConnectError
	switch {
	case errors.As(err, &ce):
		reason := "cannot connect"
		if pgErr {
			reason = "cannot connect: " + pe.Message
		}
		return &Outage{Effect: NotRun, Reason: reason, err: err}
	case pgErr && connectionLevel(pe.Code):
		e := NotRun
		if !pgconn.SafeToRetry(err) {
			e = MaybeApplied
		}
		return &Outage{Effect: e, Reason: pe.Message, err: err}
	case pgErr:
		return nil // about the statement: the caller's or the schema's, not an outage
	case pgconn.SafeToRetry(err):
		return &Outage{Effect: NotRun, Reason: "the connection failed before the call was sent", err: err}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, pgconn.ErrConnClosed),
		errors.Is(err, net.ErrClosed), isNetError(err):
		return &Outage{Effect: MaybeApplied, Reason: "the connection was lost", err: err}
	}
	return nil
}

// connectionLevel reports whether a SQLSTATE is about the connection or the server rather than
// the statement: connection exceptions (08), too many connections (53300), the server shutting
// down, crashing or starting (57P01–57P03), and system errors (58).
func connectionLevel(code string) bool {
	switch {
	case strings.HasPrefix(code, "08"), strings.HasPrefix(code, "58"):
		return true
	}
	switch code {
	case "53300", "57P01", "57P02", "57P03", "57P05":
		return true
	}
	return false
}

func isNetError(err error) bool {
	var ne net.Error
	return errors.As(err, &ne)
}
