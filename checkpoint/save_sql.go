package checkpoint

// The SQL save.go runs.
const (
	// saveSQL saves a checkpoint with its CheckpointSaved event and pending writes, and returns
	// its id, its parent's, the workflow's version after it and whether it was saved before.
	saveSQL = `SELECT checkpoint_id, parent_id, version, duplicate, created_at
	FROM cairn_checkpoint_save($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, $9, $10::jsonb, $11::jsonb, $12::jsonb, $13)`

	// checkpointCols is the select list scanCheckpoint reads from workflow_checkpoints c without
	// the state: the checkpoint's row and its pending writes.
	checkpointCols = `c.id, c.workflow_id, c.namespace, coalesce(c.node_id, ''), coalesce(c.parent_id, ''), c.metadata,
	coalesce(c.version, 0), c.created_at, c.channel_versions, c.extra, cairn_pending_writes(c.workflow_id, c.id)`

	// checkpointWithStateCols is checkpointCols and the checkpoint's state, put together from
	// its channels.
	checkpointWithStateCols = checkpointCols + `, cairn_checkpoint_state(c)`

	// loadCheckpointSQL reads checkpoint $2 of workflow $1 with its state.
	loadCheckpointSQL = `SELECT ` + checkpointWithStateCols + ` FROM workflow_checkpoints c WHERE c.workflow_id = $1 AND c.id = $2`

	// loadLatestCheckpointSQL reads the newest (greatest id) checkpoint of workflow $1 in
	// namespace $2 with its state.
	loadLatestCheckpointSQL = `SELECT ` + checkpointWithStateCols + ` FROM workflow_checkpoints c
	WHERE c.workflow_id = $1 AND c.namespace = $2 ORDER BY c.id DESC LIMIT 1`

	// checkpointsWhere is the filter of List's queries: checkpoints of workflow $1 or, when it
	// is NULL, of those whose id starts with $2, in namespace $3 (NULL: any), with ids before
	// $4 (NULL: from the newest) and metadata containing $5; up to $6, greatest id first.
	checkpointsWhere = `
	FROM workflow_checkpoints c
	WHERE ($1::text IS NULL OR c.workflow_id = $1)
	  AND ($2 = '' OR starts_with(c.workflow_id, $2))
	  AND ($3::text IS NULL OR c.namespace = $3)
	  AND ($4::text IS NULL OR c.id < $4)
	  AND c.metadata @> $5::jsonb
	ORDER BY c.id DESC LIMIT $6`

	// listCheckpointsSQL reads the checkpoints checkpointsWhere selects, without their state.
	listCheckpointsSQL = `SELECT ` + checkpointCols + checkpointsWhere

	// listCheckpointsWithStateSQL reads the checkpoints checkpointsWhere selects, with their
	// state.
	listCheckpointsWithStateSQL = `SELECT ` + checkpointWithStateCols + checkpointsWhere
)
