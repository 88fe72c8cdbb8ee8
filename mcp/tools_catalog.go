package mcp

import (
	"context"
	"errors"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/sqlexec/catalog"
)

// ListSchemasArgs takes no arguments.
type ListSchemasArgs struct{}

// ListSchemasResult lists the database's schemas.
type ListSchemasResult struct {
	Schemas []catalog.Schema `json:"schemas"`
}

// ListTablesArgs are the arguments of list_tables.
type ListTablesArgs struct {
	Schema string `json:"schema,omitempty" jsonschema:"default public"`
	Exact  bool   `json:"exact,omitempty" jsonschema:"count(*) even big tables"`
}

// ListTablesResult lists the tables of a schema.
type ListTablesResult struct {
	Schema string                 `json:"schema"`
	Tables []catalog.TableSummary `json:"tables"`
}

// TableArgs name one table.
type TableArgs struct {
	Table  string `json:"table" jsonschema:"or schema.table"`
	Schema string `json:"schema,omitempty"`
}

// IndexesResult lists a table's indexes.
type IndexesResult struct {
	Schema  string          `json:"schema"`
	Table   string          `json:"table"`
	Indexes []catalog.Index `json:"indexes"`
}

// ForeignKeysResult lists the foreign keys declared on a table.
type ForeignKeysResult struct {
	Schema      string               `json:"schema"`
	Table       string               `json:"table"`
	ForeignKeys []catalog.ForeignKey `json:"foreign_keys"`
}

func (s *Server) addCatalogTools() {
	ro := readAnnotations()
	addTool(s, &sdk.Tool{
		Name:        "list_schemas",
		Title:       "List schemas",
		Description: `The schemas, without the system ones.`,
		Annotations: ro,
	}, func(ctx context.Context, _ ListSchemasArgs) (ListSchemasResult, error) {
		sc, err := catalog.ListSchemas(ctx, s.pool)
		return ListSchemasResult{Schemas: nonNil(sc)}, err
	})
	addTool(s, &sdk.Tool{
		Name:        "list_tables",
		Title:       "List tables",
		Description: `A schema's tables and views with row counts, estimated for big tables unless exact. Example: {"schema": "public"}`,
		Annotations: ro,
	}, func(ctx context.Context, in ListTablesArgs) (ListTablesResult, error) {
		schema := in.Schema
		if schema == "" {
			schema = "public"
		}
		ts, err := catalog.ListTables(ctx, s.pool, schema, in.Exact)
		return ListTablesResult{Schema: schema, Tables: nonNil(ts)}, err
	})
	addTool(s, &sdk.Tool{
		Name:        "describe_table",
		Title:       "Describe a table",
		Description: `A table's columns, primary key and indexes.`,
		Annotations: ro,
	}, func(ctx context.Context, in TableArgs) (*catalog.Table, error) {
		schema, table, err := tableArgs(in)
		if err != nil {
			return nil, err
		}
		t, err := catalog.DescribeTable(ctx, s.pool, schema, table)
		return t, err
	})
	addTool(s, &sdk.Tool{
		Name:        "get_indexes",
		Title:       "List a table's indexes",
		Description: `A table's indexes.`,
		Annotations: ro,
	}, func(ctx context.Context, in TableArgs) (IndexesResult, error) {
		schema, table, err := tableArgs(in)
		if err != nil {
			return IndexesResult{}, err
		}
		t, err := catalog.DescribeTable(ctx, s.pool, schema, table)
		if err != nil {
			return IndexesResult{}, err
		}
		return IndexesResult{Schema: t.Schema, Table: t.Table, Indexes: nonNil(t.Indexes)}, nil
	})
	addTool(s, &sdk.Tool{
		Name:        "get_foreign_keys",
		Title:       "List a table's foreign keys",
		Description: `A table's foreign keys.`,
		Annotations: ro,
	}, func(ctx context.Context, in TableArgs) (ForeignKeysResult, error) {
		schema, table, err := tableArgs(in)
		if err != nil {
			return ForeignKeysResult{}, err
		}
		rel, err := catalog.FindRelationships(ctx, s.pool, schema, table)
		if err != nil {
			return ForeignKeysResult{}, err
		}
		return ForeignKeysResult{Schema: rel.Schema, Table: rel.Table, ForeignKeys: nonNil(rel.References)}, nil
	})
	addTool(s, &sdk.Tool{
		Name:        "find_relationships",
		Title:       "Find related tables",
		Description: `The tables a table joins to by foreign keys, both ways, with the join columns.`,
		Annotations: ro,
	}, func(ctx context.Context, in TableArgs) (*catalog.Relationships, error) {
		schema, table, err := tableArgs(in)
		if err != nil {
			return nil, err
		}
		rel, err := catalog.FindRelationships(ctx, s.pool, schema, table)
		if err != nil {
			return nil, err
		}
		rel.References, rel.ReferencedBy = nonNil(rel.References), nonNil(rel.ReferencedBy)
		return rel, nil
	})
}

func tableArgs(in TableArgs) (string, string, error) {
	if in.Table == "" {
		return "", "", errors.New("table is required: a table name, e.g. workflows (list_tables shows them)")
	}
	schema, table := splitQualified(in.Schema, in.Table)
	return schema, table, nil
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
