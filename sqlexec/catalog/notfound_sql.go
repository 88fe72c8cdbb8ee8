package catalog

// The SQL notfound.go runs, only on the error path of a lookup.
const (
	// allRelationsSQL reads every schema (with NULL for an empty one) and every relation in it,
	// flagged when it is where a lookup of schema $1 searched: that schema, or ('') visible
	// through the search path.
	allRelationsSQL = `
		SELECT n.nspname::text, c.relname::text,
		       coalesce(CASE WHEN $1::text = '' THEN pg_table_is_visible(c.oid) ELSE n.nspname = $1::text END, false)
		FROM pg_namespace n
		LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ` + relKinds + `
		WHERE n.nspname !~ '^pg_(toast|temp_)'`

	// allSchemasSQL reads the names of all schemas but the TOAST and temporary ones.
	allSchemasSQL = `SELECT nspname::text FROM pg_namespace WHERE nspname !~ '^pg_(toast|temp_)'`
)
