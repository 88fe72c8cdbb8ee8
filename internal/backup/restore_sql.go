package backup

// The SQL restore.go runs to prepare the target.
const (
	// schemaExistsSQL reads whether schema $1 exists.
	schemaExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`

	// createSchemaSQL (schema, quoted) creates a schema the archive's objects go into.
	createSchemaSQL = `CREATE SCHEMA %s`

	// currentSchemaSQL reads the target's current schema (NULL: none).
	currentSchemaSQL = `SELECT current_schema()`

	// dropObjectSQL (kind, quoted identity, both as schemaObjectsSQL read them) drops, for
	// --clean, an object in the way of the restore and what depends on it; IF EXISTS, since an
	// earlier CASCADE may have taken it.
	dropObjectSQL = `DROP %s IF EXISTS %s CASCADE`
)
