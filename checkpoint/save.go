package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// SaveParams describe a checkpoint to save.
type SaveParams struct {
	WorkflowID string
	NodeID     string          // the node (step) that produced the state
	Namespace  string          // subgraph namespace; "" is the top level
	State      json.RawMessage // the state; a JSON object is stored channel by channel
	ParentID   string          // default: the namespace's newest checkpoint
	// ExpectedVersion fences out a second writer: the save fails with *ConflictError unless the
	// workflow is at this version. nil saves whatever the version.
	ExpectedVersion *int64
	PendingWrites   []PendingWrite
	Metadata        json.RawMessage
	// IdempotencyKey makes a retried save return the first save's checkpoint and write nothing.
	IdempotencyKey string
	Actor          string // who saves, recorded in the event's metadata
}

// SaveResult is where a checkpoint went.
type SaveResult struct {
	CheckpointID string    `json:"checkpoint_id"`
	ParentID     string    `json:"parent_id,omitempty"`
	Version      int64     `json:"version"`
	Duplicate    bool      `json:"duplicate"`
	CreatedAt    time.Time `json:"created_at"`
}

// Save saves a checkpoint: one round trip that appends the CheckpointSaved event and updates the
// projections atomically.
func (s *Store) Save(ctx context.Context, p SaveParams) (SaveResult, error) {
	return save(ctx, s.pool, p)
}

// save is Save on any connection or transaction.
func save(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, p SaveParams) (SaveResult, error) {
	if err := checkID("workflow_id", p.WorkflowID); err != nil {
		return SaveResult{}, err
	}
	if len(p.State) == 0 || !json.Valid(p.State) {
		return SaveResult{}, inputErrorf("state is required: the workflow's state as JSON (an object of channel values, e.g. {\"messages\": [...], \"plan\": \"...\"})")
	}
	if len(p.NodeID) > MaxNameLen || len(p.Namespace) > MaxNameLen {
		return SaveResult{}, inputErrorf("node_id and namespace may be at most %d bytes", MaxNameLen)
	}
	if p.ParentID != "" {
		if err := checkID("parent_id", p.ParentID); err != nil {
			return SaveResult{}, err
		}
	}
	meta, err := callerr.JSONObject("metadata", p.Metadata)
	if err != nil {
		return SaveResult{}, err
	}
	writes := "[]"
	if len(p.PendingWrites) > 0 {
		for i, w := range p.PendingWrites {
			if w.TaskID == "" || w.Channel == "" {
				return SaveResult{}, inputErrorf("pending_writes[%d]: task_id and channel are required", i)
			}
			if len(w.Value) > 0 && !json.Valid(w.Value) {
				return SaveResult{}, inputErrorf("pending_writes[%d].value is not valid JSON", i)
			}
		}
		b, err := json.Marshal(p.PendingWrites)
		if err != nil {
			return SaveResult{}, fmt.Errorf("encode pending writes: %w", err)
		}
		writes = string(b)
	}
	expected := eventstore.AnyVersion
	if p.ExpectedVersion != nil {
		if *p.ExpectedVersion < 0 {
			return SaveResult{}, inputErrorf("expected_version %d: use the workflow's version (workflow_get shows it)", *p.ExpectedVersion)
		}
		expected = *p.ExpectedVersion
	}
	evMeta, _ := json.Marshal(eventstore.Metadata{Actor: p.Actor})
	var parent, node, key *string
	if p.ParentID != "" {
		parent = &p.ParentID
	}
	if p.NodeID != "" {
		node = &p.NodeID
	}
	if p.IdempotencyKey != "" {
		if len(p.IdempotencyKey) > eventstore.MaxKeyLen {
			return SaveResult{}, inputErrorf("idempotency_key may be at most %d bytes", eventstore.MaxKeyLen)
		}
		key = &p.IdempotencyKey
	}
	var r SaveResult
	var parentOut *string
	err = q.QueryRow(ctx, `SELECT checkpoint_id, parent_id, version, duplicate, created_at
		FROM cairn_checkpoint_save($1, $2, $3, $4, $5, $6::jsonb, $7, $8::jsonb, $9::jsonb, $10::jsonb, $11)`,
		p.WorkflowID, newID(), p.Namespace, node, parent, string(p.State), expected, meta, writes, string(evMeta), key).
		Scan(&r.CheckpointID, &parentOut, &r.Version, &r.Duplicate, &r.CreatedAt)
	if err != nil {
		if c := eventstore.AsConflict(err, StreamID(p.WorkflowID), expected); c != nil {
			return r, c
		}
		return r, fmt.Errorf("save checkpoint of %s: %w", p.WorkflowID, translate(err, p.WorkflowID))
	}
	if parentOut != nil {
		r.ParentID = *parentOut
	}
	return r, nil
}

// Load returns a checkpoint with its state and pending writes: the workflow's head (newest in the
// namespace) unless checkpointID names one.
func (s *Store) Load(ctx context.Context, workflowID, checkpointID, namespace string) (*Checkpoint, error) {
	if err := checkID("workflow_id", workflowID); err != nil {
		return nil, err
	}
	var row pgx.Row
	const cols = `c.id, c.workflow_id, c.namespace, coalesce(c.node_id, ''), coalesce(c.parent_id, ''),
		coalesce(c.state, cairn_state_from_channels(c.workflow_id, c.channels)), c.metadata, coalesce(c.version, 0), c.created_at`
	if checkpointID != "" {
		row = s.pool.QueryRow(ctx, `SELECT `+cols+` FROM workflow_checkpoints c WHERE c.workflow_id = $1 AND c.id = $2`, workflowID, checkpointID)
	} else {
		row = s.pool.QueryRow(ctx, `SELECT `+cols+` FROM workflow_checkpoints c
			WHERE c.workflow_id = $1 AND c.namespace = $2 ORDER BY c.created_at DESC, c.id DESC LIMIT 1`, workflowID, namespace)
	}
	var c Checkpoint
	var state []byte
	err := row.Scan(&c.ID, &c.WorkflowID, &c.Namespace, &c.NodeID, &c.ParentID, &state, &c.Metadata, &c.Version, &c.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.Get(ctx, workflowID); gerr != nil {
			return nil, gerr
		}
		if checkpointID != "" {
			return nil, &NotFoundError{What: "checkpoint", ID: checkpointID}
		}
		return nil, &NotFoundError{What: "checkpoint of workflow " + workflowID + " in namespace", ID: namespace}
	}
	if err != nil {
		return nil, fmt.Errorf("load checkpoint of %s: %w", workflowID, err)
	}
	c.State = state
	rows, err := s.pool.Query(ctx, `SELECT task_id, idx, channel, value FROM checkpoint_writes
		WHERE checkpoint_id = $1 ORDER BY task_id, idx`, c.ID)
	if err != nil {
		return nil, fmt.Errorf("load pending writes of %s: %w", c.ID, err)
	}
	c.PendingWrites, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingWrite, error) {
		var w PendingWrite
		var idx int
		err := r.Scan(&w.TaskID, &idx, &w.Channel, &w.Value)
		w.Idx = &idx
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("load pending writes of %s: %w", c.ID, err)
	}
	return &c, nil
}

// ListParams select checkpoints to list, newest first.
type ListParams struct {
	WorkflowID string
	Namespace  *string         // nil: every namespace
	Before     string          // a checkpoint id: list older ones (keyset pagination)
	Limit      int             // default 50, at most 1000
	Metadata   json.RawMessage // only checkpoints whose metadata contains this object
}

// List returns checkpoints without their state, newest first.
func (s *Store) List(ctx context.Context, p ListParams) ([]Checkpoint, error) {
	if err := checkID("workflow_id", p.WorkflowID); err != nil {
		return nil, err
	}
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, inputErrorf("limit %d: use 1 to 1000", p.Limit)
	}
	filter, err := callerr.JSONObject("metadata filter", p.Metadata)
	if err != nil {
		return nil, err
	}
	var before *string
	if p.Before != "" {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM workflow_checkpoints WHERE workflow_id = $1 AND id = $2)`, p.WorkflowID, p.Before).Scan(&exists); err != nil {
			return nil, fmt.Errorf("list checkpoints: %w", err)
		}
		if !exists {
			return nil, &NotFoundError{What: "checkpoint", ID: p.Before}
		}
		before = &p.Before
	}
	rows, err := s.pool.Query(ctx, `SELECT c.id, c.workflow_id, c.namespace, coalesce(c.node_id, ''), coalesce(c.parent_id, ''), c.metadata, coalesce(c.version, 0), c.created_at
		FROM workflow_checkpoints c
		WHERE c.workflow_id = $1
		  AND ($2::text IS NULL OR c.namespace = $2)
		  AND ($3::text IS NULL OR (c.created_at, c.id) < (SELECT b.created_at, b.id FROM workflow_checkpoints b WHERE b.id = $3))
		  AND c.metadata @> $4::jsonb
		ORDER BY c.created_at DESC, c.id DESC LIMIT $5`, p.WorkflowID, p.Namespace, before, filter, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", p.WorkflowID, err)
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) {
		var c Checkpoint
		err := r.Scan(&c.ID, &c.WorkflowID, &c.Namespace, &c.NodeID, &c.ParentID, &c.Metadata, &c.Version, &c.CreatedAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("list checkpoints of %s: %w", p.WorkflowID, err)
	}
	if len(cps) == 0 {
		if _, err := s.Get(ctx, p.WorkflowID); err != nil {
			return nil, err
		}
	}
	return cps, nil
}
