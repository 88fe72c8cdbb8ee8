package checkpoint

// The SQL counts.go runs.
const (
	// countWorkflowsSQL counts the workflows by status.
	countWorkflowsSQL = `SELECT status, count(*) FROM workflows GROUP BY status`

	// countCheckpointsSQL counts the checkpoints kept.
	countCheckpointsSQL = `SELECT count(*) FROM workflow_checkpoints`
)
