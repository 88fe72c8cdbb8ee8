package sqlexec

// The SQL runner.go runs.
const (
	// extensionTypesSQL reads the OIDs of pgvector's types in this database (0: none) and the
	// installed version of the extension ('': not installed).
	extensionTypesSQL = `SELECT
		coalesce((SELECT oid FROM pg_type WHERE typname = 'vector' ORDER BY oid LIMIT 1), 0),
		coalesce((SELECT oid FROM pg_type WHERE typname = 'halfvec' ORDER BY oid LIMIT 1), 0),
		coalesce((SELECT oid FROM pg_type WHERE typname = 'sparsevec' ORDER BY oid LIMIT 1), 0),
		coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), '')`

	// resetSessionSQL resets everything a call may have left on its connection's session.
	resetSessionSQL = `DISCARD ALL`
)
