package agents

// The SQL counts.go runs.
const (
	// countsSQL counts the agents and the raw executions kept.
	countsSQL = `SELECT (SELECT count(*) FROM agents), (SELECT count(*) FROM agent_executions)`
)
