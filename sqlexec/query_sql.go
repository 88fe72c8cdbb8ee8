package sqlexec

// The SQL query.go runs around a caller's statement, which it sends as given (wrapped in
// limitPrefix and limitSuffix when it may stop early).
const (
	// beginReadOnlySQL opens the read-only transaction a read runs in.
	beginReadOnlySQL = `BEGIN READ ONLY`

	// rollbackSQL ends a read's transaction, and a transaction whose statements failed
	// (transaction.go), without keeping anything.
	rollbackSQL = `ROLLBACK`

	// limitPrefix wraps a plain SELECT so that the server stops after max rows instead of
	// sending a huge result that would be read only to be thrown away. (A cursor does the same at
	// the cost of two more statements per call.) The newline before the closing parenthesis
	// keeps a trailing -- comment from swallowing it.
	limitPrefix = "SELECT * FROM (\n"

	// limitSuffix closes what limitPrefix opened; the row limit follows it.
	limitSuffix = "\n) AS cairn_query LIMIT "
)
