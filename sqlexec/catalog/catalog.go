// Package catalog reads the PostgreSQL system catalogs into typed values: the schemas, the
// relations of a schema with their row counts, a table's columns and indexes, and the foreign
// keys between tables. The MCP introspection tools render these values as JSON, and the vector
// tools use them to check caller-supplied identifiers before quoting them into SQL.
//
// Names are matched exactly as given, as a quoted identifier would be: "MyTable" is not
// "mytable", and a string that looks like SQL is just a name that does not exist. Caller
// strings only ever reach the server as bound parameters compared with catalog columns.
// An empty schema resolves a table through the connection's search_path, as an unqualified
// name in a query would. A name that does not resolve yields a *NotFoundError, returned
// unwrapped, whose message suggests the nearest existing names.
//
// The catalog queries do not schema-qualify pg_catalog objects: PostgreSQL searches pg_catalog
// before the search_path unless the search_path names it explicitly, which cairn never does.
package catalog

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
)

// Querier is what the catalog needs from a connection, pool or transaction; *pgx.Conn,
// *pgxpool.Pool and pgx.Tx all satisfy it.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Relation kinds as reported in Kind fields.
const (
	KindTable            = "table"
	KindView             = "view"
	KindMaterializedView = "materialized view"
	KindPartitionedTable = "partitioned table"
	KindForeignTable     = "foreign table"
)

// kindName maps pg_class.relkind to the Kind strings above.
func kindName(relkind string) string {
	switch relkind {
	case "r":
		return KindTable
	case "v":
		return KindView
	case "m":
		return KindMaterializedView
	case "p":
		return KindPartitionedTable
	case "f":
		return KindForeignTable
	}
	return relkind
}

// qualified renders schema.name for messages; an empty schema (search path) leaves the name bare.
func qualified(schema, name string) string {
	if schema == "" {
		return name
	}
	return schema + "." + name
}

// nonNil makes an empty list encode as [] rather than null: the JSON is a public contract, and
// clients should not have to tell the two apart.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// wrap adds what was being done to a database error.
func wrap(err error, format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, err)...)
}

// badNames returns a *NotFoundError without asking the server when schema or name cannot be
// an identifier at all: PostgreSQL text holds neither NUL bytes nor invalid UTF-8, and binding
// one would fail as a server error rather than as "does not exist".
func badNames(schema, name string) error {
	bad := func(s string) bool { return !utf8.ValidString(s) || strings.ContainsRune(s, 0) }
	switch {
	case bad(schema):
		return &NotFoundError{Kind: "schema", Name: schema, Schema: schema, Table: name}
	case bad(name):
		return &NotFoundError{Kind: "table", Name: name, Schema: schema}
	}
	return nil
}
