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

// relationshipsSQL returns the resolved relation with its outgoing keys and, when $3, its
// incoming keys, as json arrays of ForeignKey.
//
// Partitioning multiplies constraints: a key declared on a partitioned table is cloned onto
// each partition, and a key referencing a partitioned table is cloned once per referenced
// partition, on the referencing table itself. The clones of the second kind (whose parent
// constraint sits on the same table) are internal bookkeeping and left out; a partition's
// inherited key is a real key of that partition and is kept. Incoming keys are only the
// top-level ones, so a partitioned referencing table shows once, not once per partition.
const relationshipsSQL = relCTE + `
SELECT rel.nspname, rel.relname,
	coalesce(json_agg(fk.j ORDER BY fk.conname) FILTER (WHERE fk.outgoing), '[]'),
	coalesce(json_agg(fk.j ORDER BY fk.src_schema, fk.src_table, fk.conname) FILTER (WHERE fk.incoming), '[]')
FROM rel
LEFT JOIN LATERAL (
	SELECT c.conname, n.nspname AS src_schema, cl.relname AS src_table, x.outgoing, x.incoming,
		json_build_object(
			'name', c.conname,
			'schema', n.nspname,
			'table', cl.relname,
			'columns', (
				SELECT json_agg(a.attname ORDER BY k.ord)
				FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
			'referenced_schema', rn.nspname,
			'referenced_table', rc.relname,
			'referenced_columns', (
				SELECT json_agg(a.attname ORDER BY k.ord)
				FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
			'on_update', CASE c.confupdtype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
				WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END,
			'on_delete', CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
				WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END,
			'definition', pg_get_constraintdef(c.oid, true)
		) AS j
	FROM pg_constraint c
	JOIN pg_class cl ON cl.oid = c.conrelid
	JOIN pg_namespace n ON n.oid = cl.relnamespace
	JOIN pg_class rc ON rc.oid = c.confrelid
	JOIN pg_namespace rn ON rn.oid = rc.relnamespace
	LEFT JOIN pg_constraint parent ON parent.oid = c.conparentid
	CROSS JOIN LATERAL (SELECT
		c.conrelid = rel.oid AND (parent.oid IS NULL OR parent.conrelid <> c.conrelid) AS outgoing,
		$3::bool AND c.confrelid = rel.oid AND parent.oid IS NULL AS incoming
	) x
	WHERE c.contype = 'f' AND (c.conrelid = rel.oid OR c.confrelid = rel.oid) AND (x.outgoing OR x.incoming)
) fk ON true
GROUP BY rel.oid, rel.nspname, rel.relname`

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
