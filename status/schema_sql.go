package status

// The SQL schema.go runs.
const (
	// appliedMigrationsSQL reads the versions of the applied cairn migrations.
	appliedMigrationsSQL = `SELECT version FROM cairn_migrations`
)
