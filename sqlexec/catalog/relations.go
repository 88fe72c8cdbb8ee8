package catalog

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
)

// ForeignKey is one foreign key constraint. Columns and ReferencedColumns pair up by position,
// so a composite key joins as Columns[i] = ReferencedColumns[i].
type ForeignKey struct {
	Name              string   `json:"name"`
	Schema            string   `json:"schema"`
	Table             string   `json:"table"`
	Columns           []string `json:"columns"`
	ReferencedSchema  string   `json:"referenced_schema"`
	ReferencedTable   string   `json:"referenced_table"`
	ReferencedColumns []string `json:"referenced_columns"`
	// OnUpdate and OnDelete are the referential actions: "NO ACTION", "RESTRICT", "CASCADE",
	// "SET NULL" or "SET DEFAULT".
	OnUpdate string `json:"on_update"`
	OnDelete string `json:"on_delete"`
	// Definition is the constraint as PostgreSQL prints it (pg_get_constraintdef), which also
	// shows MATCH FULL, DEFERRABLE and NOT VALID.
	Definition string `json:"definition"`
}

// Relationships are the foreign keys that link a table to others, in both directions. A
// self-referencing key appears in both lists.
type Relationships struct {
	Schema string `json:"schema"`
	Table  string `json:"table"`
	// References are the keys declared on this table (outgoing), by name.
	References []ForeignKey `json:"references"`
	// ReferencedBy are the keys on other tables that point at this one (incoming), by
	// referencing schema, table and key name.
	ReferencedBy []ForeignKey `json:"referenced_by"`
}

// ForeignKeys returns the foreign keys declared on the table (the ones pointing elsewhere), by
// name. An empty schema resolves the table through the search path.
func ForeignKeys(ctx context.Context, q Querier, schema, table string) ([]ForeignKey, error) {
	r, err := relationships(ctx, q, schema, table, false)
	if err != nil {
		return nil, err
	}
	return r.References, nil
}

// FindRelationships returns the foreign keys linking the table to others in both directions:
// the keys it declares and the keys on other tables (or itself) that reference it. An empty
// schema resolves the table through the search path.
func FindRelationships(ctx context.Context, q Querier, schema, table string) (*Relationships, error) {
	return relationships(ctx, q, schema, table, true)
}

func relationships(ctx context.Context, q Querier, schema, table string, incoming bool) (*Relationships, error) {
	if err := badNames(schema, table); err != nil {
		return nil, err
	}
	var r Relationships
	err := q.QueryRow(ctx, relationshipsSQL, schema, table, incoming).Scan(&r.Schema, &r.Table, &r.References, &r.ReferencedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, tableNotFound(ctx, q, schema, table)
	}
	if err != nil {
		return nil, wrap(err, "find foreign keys of %s", qualified(schema, table))
	}
	r.References, r.ReferencedBy = fixKeys(r.References), fixKeys(r.ReferencedBy)
	return &r, nil
}

func fixKeys(fks []ForeignKey) []ForeignKey {
	for i := range fks {
		fks[i].Columns = nonNil(fks[i].Columns)
		fks[i].ReferencedColumns = nonNil(fks[i].ReferencedColumns)
	}
	return nonNil(fks)
}
