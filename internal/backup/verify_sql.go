package backup

// The SQL verify.go runs (and createDatabaseSQL, summary_sql.go, for the scratch database).
const (
	// serverVersionNumSQL reads the server's version as a number (130000: 13.0).
	serverVersionNumSQL = `SELECT current_setting('server_version_num')::int`

	// dropDatabaseSQL (database, quoted) drops the scratch database if it is there.
	dropDatabaseSQL = `DROP DATABASE IF EXISTS %s`

	// dropDatabaseForceSQL makes dropDatabaseSQL end the sessions still connected to the
	// database (PostgreSQL 13+).
	dropDatabaseForceSQL = ` WITH (FORCE)`
)
