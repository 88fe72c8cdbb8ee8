package migrations

// The SQL migrate.go runs; the migrations' own SQL is in the *.sql files.
const (
	// migrateLockSQL waits for and takes the session-level advisory lock that a migration run
	// holds.
	migrateLockSQL = `SELECT pg_advisory_lock($1)`

	// migrateUnlockSQL releases the lock migrateLockSQL took.
	migrateUnlockSQL = `SELECT pg_advisory_unlock($1)`

	// createMigrationsTableSQL creates, unless it exists, the table that records the applied
	// migrations.
	createMigrationsTableSQL = `CREATE TABLE IF NOT EXISTS cairn_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
)`

	// appliedVersionsSQL reads the versions of the applied migrations.
	appliedVersionsSQL = `SELECT version FROM cairn_migrations`

	// extensionInstalledSQL reads whether extension $1 is installed in the database.
	extensionInstalledSQL = `SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1)`

	// recordMigrationSQL records migration $1 (named $2) as applied, in its transaction.
	recordMigrationSQL = `INSERT INTO cairn_migrations (version, name) VALUES ($1, $2)`

	// latestMigrationSQL reads the newest applied migration (0: none).
	latestMigrationSQL = `SELECT coalesce(max(version), 0) FROM cairn_migrations`

	// migrationsTableMissingSQL reads whether the migrations table is missing (on the search
	// path), which makes the database one cairn never migrated.
	migrationsTableMissingSQL = `SELECT to_regclass('cairn_migrations') IS NULL`
)
