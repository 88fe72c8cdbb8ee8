package backup

// The SQL backup.go runs, in the repeatable-read transaction whose snapshot pg_dump dumps.
const (
	// noStatementTimeoutSQL lifts, for the transaction, the session's statement timeout, which
	// is for MCP calls, not for counting a big table (countRowsUnlimited's too, tables.go).
	noStatementTimeoutSQL = `SET LOCAL statement_timeout = 0`

	// noIdleTimeoutSQL lifts, for the transaction, the session's idle-in-transaction timeout:
	// the transaction idles while pg_dump works.
	noIdleTimeoutSQL = `SET LOCAL idle_in_transaction_session_timeout = 0`

	// exportSnapshotSQL exports the transaction's snapshot for pg_dump and reads the manifest's
	// facts: current schema (NULL: none), database, time, and the server's version as text and
	// as a number.
	exportSnapshotSQL = `SELECT pg_export_snapshot(), current_schema(), current_database(), now(),
		current_setting('server_version'), current_setting('server_version_num')::int`

	// migrationTablesSQL reads whether schema $1 holds cairn's and River's migration tables,
	// and whether River's has the line column.
	migrationTablesSQL = `SELECT to_regclass(format('%I.cairn_migrations', $1::text)) IS NOT NULL,
		to_regclass(format('%I.river_migration', $1::text)) IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass(format('%I.river_migration', $1::text)) AND attname = 'line' AND NOT attisdropped)`

	// riverVersionSQL (River's migration table, schema-qualified and quoted) reads the latest
	// River migration applied (0: none).
	riverVersionSQL = `SELECT coalesce(max(version), 0) FROM %s`

	// riverMainLineSQL restricts riverVersionSQL to River's main line, where the table has
	// lines.
	riverMainLineSQL = ` WHERE line = 'main'`

	// vectorExtensionSQL reads the installed vector extension's version and schema (no row:
	// not installed).
	vectorExtensionSQL = `SELECT e.extversion, n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
		WHERE e.extname = 'vector'`
)
