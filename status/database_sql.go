package status

// The SQL database.go runs.
const (
	// serverVersionsSQL reads the PostgreSQL version, the installed pgvector version ('': not
	// installed) and the one the server could install ('': none).
	serverVersionsSQL = `SELECT current_setting('server_version'),
		coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), ''),
		coalesce((SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), '')`
)
