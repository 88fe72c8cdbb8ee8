package agents

// The SQL registry.go runs.
const (
	// agentCols is the select list scanAgent reads: an agent's row.
	agentCols = `agent_id, name, template, state, tokens_used, metadata, coalesce(workflow_id, ''), created_at, updated_at`

	// insertAgentSQL creates an agent in state registered and returns it.
	insertAgentSQL = `INSERT INTO agents (agent_id, name, template, state, metadata)
	VALUES ($1, $2, $3, 'registered', $4::jsonb) RETURNING ` + agentCols

	// lockAgentSQL locks an agent's row until the transaction ends (no row: no such agent).
	lockAgentSQL = `SELECT 1 FROM agents WHERE agent_id = $1 FOR UPDATE`

	// updateAgentSQL sets an agent's state and token total where given (non-NULL), merges the
	// object $4 into its metadata, and returns it.
	updateAgentSQL = `UPDATE agents SET state = coalesce($2, state), tokens_used = coalesce($3, tokens_used),
	metadata = metadata || coalesce($4::jsonb, '{}'), updated_at = now() WHERE agent_id = $1 RETURNING ` + agentCols

	// getAgentSQL reads an agent by id.
	getAgentSQL = `SELECT ` + agentCols + ` FROM agents WHERE agent_id = $1`

	// listAgentsSQL reads up to $3 agents of a state and template ('': any), most recently
	// updated first.
	listAgentsSQL = `SELECT ` + agentCols + ` FROM agents
	WHERE ($1 = '' OR state = $1) AND ($2 = '' OR template_name = $2)
	ORDER BY updated_at DESC, agent_id LIMIT $3`
)
