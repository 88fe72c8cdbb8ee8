package catalog

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// SchemaNames returns, by name, up to limit names of the schemas ListSchemas lists that start
// with prefix.
func SchemaNames(ctx context.Context, q Querier, prefix string, limit int) ([]string, error) {
	return listNames(ctx, q, "list schema names", schemaNamesSQL, prefix, limit)
}

// TableNames returns, by name, up to limit names of the relations of schema that ListTables
// lists and that start with prefix.
func TableNames(ctx context.Context, q Querier, schema, prefix string, limit int) ([]string, error) {
	if !validText(schema) {
		return []string{}, nil
	}
	return listNames(ctx, q, "list table names", tableNamesSQL, prefix, limit, schema)
}

// listNames runs a query of names whose first two parameters are a prefix and a limit.
func listNames(ctx context.Context, q Querier, what, sql string, prefix string, limit int, args ...any) ([]string, error) {
	if !validText(prefix) {
		return []string{}, nil // no name starts with what PostgreSQL text cannot hold
	}
	rows, err := q.Query(ctx, sql, append([]any{prefix, limit}, args...)...)
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	return nonNil(out), nil
}

// validText reports whether s can be bound as PostgreSQL text: no NUL bytes, valid UTF-8.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
