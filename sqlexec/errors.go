package sqlexec

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/db"
)

func inputErrorf(format string, args ...any) error { return callerr.Inputf(format, args...) }

// IsInputError reports whether err is the caller's to fix (bad SQL, bad parameters, a
// constraint the data violates) rather than a fault of cairn or the database server.
func IsInputError(err error) bool {
	if callerr.Is(err) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && db.AsOutage(err) == nil
}

// describePgError renders a server error for a model to act on: message, SQLSTATE, where in the
// statement it happened, and PostgreSQL's own detail and hint. offset is how many bytes cairn
// put before the caller's text (the row-cap wrapper), so positions point into what they sent.
func describePgError(e *pgconn.PgError, sqlText string, offset int) string {
	var b strings.Builder
	b.WriteString(e.Message)
	fmt.Fprintf(&b, " (SQLSTATE %s)", e.Code)
	if pos := int(e.Position) - 1 - offset; e.Position > 0 && pos >= 0 && pos <= len(sqlText) {
		// Positions count characters; close enough for ASCII SQL, and only used for context.
		start := max(0, pos-20)
		end := min(len(sqlText), pos+20)
		fmt.Fprintf(&b, " at character %d, near %q", pos+1, sqlText[start:end])
	}
	if e.Detail != "" {
		b.WriteString("; detail: " + e.Detail)
	}
	if e.Hint != "" {
		b.WriteString("; hint: " + e.Hint)
	}
	switch e.Code {
	case "57014":
		b.WriteString("; the statement ran past the statement timeout (--statement-timeout / CAIRN_STATEMENT_TIMEOUT): narrow it with WHERE or LIMIT")
	case "25006":
		b.WriteString("; this call runs read-only: use the execute tool for writes")
	case "42P01":
		b.WriteString("; list_tables shows the tables there are")
	case "42703":
		b.WriteString("; describe_table shows a table's columns")
	case "42P18", "42P08":
		b.WriteString("; add a cast to the parameter, e.g. $1::text")
	}
	return b.String()
}

// wrapPgError turns a server error about the statement into an callerr.Input with the description
// above, and a failure to reach the database into a *db.Outage (see db.AsOutage); other errors
// (a cancelled context) are returned with context.
func wrapPgError(err error, what, sqlText string, offset int) error {
	if o := db.AsOutage(err); o != nil {
		return o
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return &callerr.Input{Msg: what + ": " + describePgError(pe, sqlText, offset)}
	}
	if pgconn.Timeout(err) {
		return fmt.Errorf("%s: cancelled or timed out before the database answered: %w", what, err)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// noEffect is wrapPgError for failures that cannot have changed anything: a read, or a
// transaction that never reached COMMIT.
func noEffect(err error) error {
	var o *db.Outage
	if errors.As(err, &o) {
		return o.NoEffect()
	}
	return err
}
