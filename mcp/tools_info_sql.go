package mcp

// The SQL tools_info.go runs.
const (
	// serverVersionsSQL reads the PostgreSQL version and the installed pgvector version ('': not
	// installed), for server_info.
	serverVersionsSQL = `SELECT current_setting('server_version'),
			coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '')`

	// connectionIdentitySQL reads who and where the connection is, for db_identity: current and
	// session user, database, server address ('': a unix socket), SSL in use with its version
	// and cipher, and whether the current user is a superuser.
	connectionIdentitySQL = `SELECT current_user, session_user, current_database(),
			coalesce(host(inet_server_addr()), ''),
			coalesce((SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()), false),
			coalesce((SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid()), ''),
			coalesce((SELECT cipher FROM pg_stat_ssl WHERE pid = pg_backend_pid()), ''),
			(SELECT rolsuper FROM pg_roles WHERE rolname = current_user)`
)
