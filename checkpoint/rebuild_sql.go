package checkpoint

// The SQL rebuild.go runs.
const (
	// lockProjectionsSQL makes writers of the workflow projections wait until the transaction
	// ends; readers go on.
	lockProjectionsSQL = `LOCK TABLE workflows, workflow_checkpoints, workflow_steps, checkpoint_writes IN EXCLUSIVE MODE`

	// rebuildSQL recomputes the workflow projections from the event store and returns how many
	// events it applied.
	rebuildSQL = `SELECT cairn_rebuild_workflows()`
)
