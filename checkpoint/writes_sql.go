package checkpoint

// The SQL writes.go runs.
const (
	// putWritesSQL adds a task's writes to a checkpoint, with their event, and returns the
	// workflow's version and status after them and how many writes it stored.
	putWritesSQL = `SELECT version, written, status FROM cairn_put_writes($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb)`
)
