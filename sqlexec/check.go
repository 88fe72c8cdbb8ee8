package sqlexec

import (
	"context"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// StatementCheck vets one parsed caller statement before it runs: a non-nil error refuses it and
// is returned to the caller as it is (so a typed error keeps its type). The statement is shared
// with other callers and must not be modified.
type StatementCheck func(ctx context.Context, st *sqlguard.Statement) error

type statementCheckKey struct{}

// WithStatementCheck returns a context under which Query, Execute and Transaction pass every
// caller statement to check after parsing it and before running anything: a transaction's
// statements are all checked before the first one runs. It is how a front end applies a
// caller's permissions (and records what ran for its audit log) without the Runner knowing who
// the caller is. SQL the Runner builds itself (VectorSearch, InsertVector) is not passed: its
// front end checks the names it is given.
func WithStatementCheck(ctx context.Context, check StatementCheck) context.Context {
	return context.WithValue(ctx, statementCheckKey{}, check)
}

// checkStatement runs the context's StatementCheck, if any.
func checkStatement(ctx context.Context, st *sqlguard.Statement) error {
	if check, ok := ctx.Value(statementCheckKey{}).(StatementCheck); ok && check != nil {
		return check(ctx, st)
	}
	return nil
}
