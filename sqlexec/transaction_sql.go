package sqlexec

// The SQL transaction.go runs around the caller's statements, which it sends as given; a
// transaction whose statements failed ends with rollbackSQL (query_sql.go).
const (
	// beginSQL opens the transaction the statements run in.
	beginSQL = `BEGIN`

	// commitSQL ends the transaction, keeping what its statements did.
	commitSQL = `COMMIT`
)
