package jobs

// The SQL migrate.go runs.
const (
	// migrateLockSQL waits for and takes the session-level advisory lock that River's
	// migrations run under.
	migrateLockSQL = `SELECT pg_advisory_lock($1)`
)
