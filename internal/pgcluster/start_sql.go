package pgcluster

// The SQL start.go runs.
const (
	// createDatabaseSQL (database, quoted) creates the cluster's database, through a connection
	// to the postgres database.
	createDatabaseSQL = `CREATE DATABASE %s`

	// serverInfoSQL reads the server's version as a number (130000: 13.0) and whether pgvector
	// is available to install.
	serverInfoSQL = `SELECT current_setting('server_version_num')::int,
		EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector')`
)
