package checkpoint

// The SQL retention.go runs.
const (
	// pruneSQL deletes up to $3 checkpoints beyond the newest $1 of each (workflow, namespace)
	// or older than the interval $2, with the blobs no checkpoint refers to any more, and
	// returns how many checkpoints it deleted.
	pruneSQL = `SELECT cairn_prune_checkpoints($1, $2::interval, $3)`
)
