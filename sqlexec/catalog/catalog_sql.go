package catalog

// The SQL catalog.go holds: fragments the other statements of the package are built from.
const (
	// relKinds is the SQL list of the pg_class.relkind values the catalog reports: the relations
	// a query can select from. Indexes, sequences, composite types and TOAST tables are left out.
	relKinds = `('r', 'v', 'm', 'p', 'f')`

	// relCTE resolves $1 (schema, "" for the search path) and $2 (relation name) to at most one
	// relation. The names are compared as text, not cast to the name type, so a long name is not
	// truncated to 63 bytes and matched against a different relation; the comparison can still
	// use pg_class's name index. pg_table_is_visible is true only for the first relation of that
	// name along the search path, so at most one row comes back either way.
	relCTE = `WITH rel AS (
	SELECT c.oid, n.nspname::text AS nspname, c.relname::text AS relname, c.relkind::text AS relkind
	FROM pg_class c
	JOIN pg_namespace n ON n.oid = c.relnamespace
	WHERE c.relname = $2::text
	  AND c.relkind IN ` + relKinds + `
	  AND CASE WHEN $1::text = '' THEN pg_table_is_visible(c.oid) ELSE n.nspname = $1::text END
)
`
)
