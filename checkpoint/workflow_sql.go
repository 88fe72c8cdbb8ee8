package checkpoint

// The SQL workflow.go runs.
const (
	// workflowCols is the select list scanWorkflow reads: a workflow's row.
	workflowCols = `id, name, status, input, output, coalesce(error, ''), interrupt, coalesce(head_checkpoint_id, ''),
	version, coalesce(parent_workflow_id, ''), coalesce(forked_from, ''), metadata, created_at, updated_at`

	// workflowExistsSQL reads whether workflow $1 exists and the version of its stream $2 (0:
	// none), which a workflow started again after its delete continues.
	workflowExistsSQL = `SELECT EXISTS (SELECT 1 FROM workflows WHERE id = $1),
	coalesce((SELECT version FROM event_streams WHERE stream_id = $2), 0)`

	// insertWorkflowSQL creates a running workflow at its stream's version $5 and returns it.
	insertWorkflowSQL = `INSERT INTO workflows (id, name, status, input, metadata, version, parent_workflow_id, forked_from)
	VALUES ($1, $2, 'running', $3::jsonb, $4::jsonb, $5, $6, $7) RETURNING ` + workflowCols

	// getWorkflowSQL reads a workflow by id.
	getWorkflowSQL = `SELECT ` + workflowCols + ` FROM workflows WHERE id = $1`

	// listWorkflowsSQL reads up to $5 workflows of a status and name ('': any) updated before
	// the cursor ($3, $4; NULL: from the newest), newest-updated first.
	listWorkflowsSQL = `SELECT ` + workflowCols + ` FROM workflows
	WHERE ($1 = '' OR status = $1) AND ($2 = '' OR name = $2)
	  AND ($3::timestamptz IS NULL OR (updated_at, id) < ($3, $4))
	ORDER BY updated_at DESC, id DESC LIMIT $5`

	// workflowIDsSQL reads up to $2 ids of workflows that start with $1, by id.
	workflowIDsSQL = `SELECT id FROM workflows WHERE left(id, length($1)) = $1 ORDER BY id LIMIT $2`

	// lockWorkflowSQL reads a workflow's status and locks its row until the transaction ends.
	lockWorkflowSQL = `SELECT status FROM workflows WHERE id = $1 FOR UPDATE`

	// interruptWorkflowSQL sets workflow $1 interrupted at version $2, waiting on the interrupt
	// $3, and returns it.
	interruptWorkflowSQL = `UPDATE workflows SET status = 'interrupted', interrupt = $3::jsonb, version = $2, updated_at = now()
	WHERE id = $1 RETURNING ` + workflowCols

	// resumeWorkflowSQL sets workflow $1 running again at version $2 and returns it.
	resumeWorkflowSQL = `UPDATE workflows SET status = 'running', interrupt = NULL, version = $2, updated_at = now()
	WHERE id = $1 RETURNING ` + workflowCols

	// completeWorkflowSQL sets workflow $1 completed at version $2 with the output $3 and
	// returns it.
	completeWorkflowSQL = `UPDATE workflows SET status = 'completed', output = $3::jsonb, interrupt = NULL, version = $2, updated_at = now()
	WHERE id = $1 RETURNING ` + workflowCols

	// failWorkflowSQL sets workflow $1 failed at version $2 with the error $3 and returns it.
	failWorkflowSQL = `UPDATE workflows SET status = 'failed', error = $3, interrupt = NULL, version = $2, updated_at = now()
	WHERE id = $1 RETURNING ` + workflowCols

	// deleteWorkflowSQL deletes a workflow; its checkpoints, steps and writes go with it.
	deleteWorkflowSQL = `DELETE FROM workflows WHERE id = $1`
)
