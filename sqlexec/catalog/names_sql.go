package catalog

// The SQL names.go runs. Each statement's first two parameters are a prefix and a limit, as
// listNames binds them.
const (
	// schemaNamesSQL reads, by name, up to $2 names of the schemas ListSchemas lists that start
	// with $1.
	schemaNamesSQL = `
		SELECT nspname::text FROM pg_namespace
		WHERE nspname NOT IN ('pg_catalog', 'information_schema') AND nspname !~ '^pg_(toast|temp_)'
		  AND left(nspname, length($1)) = $1
		ORDER BY nspname LIMIT $2`

	// tableNamesSQL reads, by name, up to $2 names of the relations of schema $3 that ListTables
	// lists and that start with $1.
	tableNamesSQL = `
		SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ` + relKinds + ` AND left(c.relname, length($1)) = $1 AND n.nspname = $3
		ORDER BY c.relname LIMIT $2`
)
