package agents

// The SQL executions.go runs.
const (
	// recordExecutionSQL records an execution with its event and rollups, adds its tokens to the
	// agent's, and returns its id, the agent's token total after it and whether it was recorded
	// before (the idempotency key $11 was used).
	recordExecutionSQL = `SELECT execution_id, agent_tokens_used, duplicate, created_at
	FROM cairn_agent_record_execution($1, $2, $3, $4, $5, $6::float8::numeric, $7, $8, $9, $10::jsonb, $11)`

	// pruneExecutionsSQL deletes up to $2 raw executions older than the interval $1 and returns
	// how many it deleted.
	pruneExecutionsSQL = `SELECT cairn_prune_executions($1::interval, $2)`
)
