package backup

// The SQL summary.go runs (CreateDatabase).
const (
	// databaseExistsSQL reads whether database $1 exists.
	databaseExistsSQL = `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`

	// createDatabaseSQL (database, quoted) creates a database from the default template; verify.go
	// creates its scratch database with it too.
	createDatabaseSQL = `CREATE DATABASE %s`
)
