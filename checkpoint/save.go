package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// SaveParams describe a checkpoint to save.
type SaveParams struct {
	WorkflowID string
	// CheckpointID is the caller's id for the checkpoint (LangGraph makes its own, time-ordered);
	// default one cairn makes, after the namespace's newest. Saving an id again with the same
	// content returns the first save (Duplicate); with other content it fails with
	// *CheckpointConflictError.
	CheckpointID string
	NodeID       string          // the node (step) that produced the state; optional
	Namespace    string          // subgraph namespace; "" is the top level
	State        json.RawMessage // the state; a JSON object is stored channel by channel
	// ChannelVersions, a JSON object of channel → version (a string or a number), saves the
	// checkpoint with versioned channels: State then holds the values of new versions only, and
	// each other channel has the value saved earlier under its version in this namespace.
	ChannelVersions json.RawMessage
	// Extra is a JSON object kept with the checkpoint and returned unchanged (a framework's own
	// bookkeeping, such as LangGraph's v, ts and versions_seen).
	Extra json.RawMessage
	// ParentID is the checkpoint this one follows. Default: the namespace's newest, or none when
	// CheckpointID is given (a caller that names its checkpoints names their parents).
	ParentID string
	// ExpectedVersion fences out a second writer: the save fails with *ConflictError unless the
	// workflow is at this version. nil saves whatever the version.
	ExpectedVersion *int64
	PendingWrites   []PendingWrite
	Metadata        json.RawMessage
	// IdempotencyKey makes a retried save return the first save's checkpoint and write nothing.
	IdempotencyKey string
	// WorkflowName names the workflow when this save starts it (a workflow id not seen before).
	WorkflowName string
	Actor        string // who saves, recorded in the event's metadata
}

// SaveResult is where a checkpoint went.
type SaveResult struct {
	CheckpointID string    `json:"checkpoint_id"`
	ParentID     string    `json:"parent_id,omitempty"`
	Version      int64     `json:"version"`
	Duplicate    bool      `json:"duplicate"`
	CreatedAt    time.Time `json:"created_at"`
}

// CheckpointConflictError says a caller-chosen checkpoint id was saved before with other
// content: a second writer on the thread, or an id reused by mistake.
type CheckpointConflictError struct {
	WorkflowID, CheckpointID string
}

// CallerCanFix marks CheckpointConflictError as the caller's to fix.
func (*CheckpointConflictError) CallerCanFix() {}

func (e *CheckpointConflictError) Error() string {
	return fmt.Sprintf("checkpoint %q of workflow %q was saved before with other content: give this checkpoint a new id, or load that one (checkpoint_load)", e.CheckpointID, e.WorkflowID)
}

// Save saves a checkpoint: one round trip that appends the CheckpointSaved event and updates the
// projections atomically. A workflow id not seen before is started by the save, in the same
// transaction.
func (s *Store) Save(ctx context.Context, p SaveParams) (SaveResult, error) {
	r, err := save(ctx, s.pool, p)
	var nf *NotFoundError
	if !errors.As(err, &nf) || nf.What != "workflow" {
		return r, err
	}
	_, err = s.start(ctx, StartParams{ID: p.WorkflowID, Name: p.WorkflowName, Actor: p.Actor}, "", "", func(tx pgx.Tx, _ *Workflow) error {
		r, err = save(ctx, tx, p)
		return err
	})
	var ie *callerr.Input
	if errors.As(err, &ie) {
		// Started by another caller since: save into it.
		if _, gerr := s.Get(ctx, p.WorkflowID); gerr == nil {
			return save(ctx, s.pool, p)
		}
	}
	return r, err
}

// versionsObject checks a channel_versions argument: a JSON object of strings or numbers.
func versionsObject(v json.RawMessage) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(v, &m); err != nil || m == nil {
		return nil, inputErrorf("channel_versions must be a JSON object of channel → version, e.g. {\"messages\": 3, \"plan\": 1}")
	}
	for ch, ver := range m {
		var x any
		_ = json.Unmarshal(ver, &x)
		switch x.(type) {
		case string, float64:
		default:
			return nil, inputErrorf("channel_versions[%q] is %s: a version is a string or a number", ch, ver)
		}
	}
	return m, nil
}

// save is Save on any connection or transaction, without starting the workflow.
func save(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, p SaveParams) (SaveResult, error) {
	if err := checkID("workflow_id", p.WorkflowID); err != nil {
		return SaveResult{}, err
	}
	if p.CheckpointID != "" {
		if err := checkID("checkpoint_id", p.CheckpointID); err != nil {
			return SaveResult{}, err
		}
	}
	if len(p.State) == 0 || !json.Valid(p.State) {
		if len(p.ChannelVersions) == 0 {
			return SaveResult{}, inputErrorf("state is required: the workflow's state as JSON (an object of channel values, e.g. {\"messages\": [...], \"plan\": \"...\"})")
		}
		if len(p.State) > 0 {
			return SaveResult{}, inputErrorf("state is not valid JSON")
		}
		p.State = json.RawMessage(`{}`)
	}
	var versions *string
	if len(p.ChannelVersions) > 0 && string(p.ChannelVersions) != "null" {
		vs, err := versionsObject(p.ChannelVersions)
		if err != nil {
			return SaveResult{}, err
		}
		var st map[string]json.RawMessage
		if err := json.Unmarshal(p.State, &st); err != nil || st == nil {
			return SaveResult{}, inputErrorf("with channel_versions, state must be a JSON object of the new versions' values, e.g. {\"messages\": [...]}")
		}
		for ch := range st {
			if _, ok := vs[ch]; !ok {
				return SaveResult{}, inputErrorf("state has channel %q, which channel_versions does not name: give it a version", ch)
			}
		}
		v := string(p.ChannelVersions)
		versions = &v
	}
	var extra *string
	if len(p.Extra) > 0 && string(p.Extra) != "null" {
		e, err := callerr.JSONObject("extra", p.Extra)
		if err != nil {
			return SaveResult{}, err
		}
		extra = &e
	}
	if len(p.NodeID) > MaxNameLen || len(p.Namespace) > MaxNameLen || len(p.WorkflowName) > MaxNameLen {
		return SaveResult{}, inputErrorf("node_id, namespace and workflow_name may be at most %d bytes", MaxNameLen)
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
		if err := checkWrites("pending_writes", p.PendingWrites, true); err != nil {
			return SaveResult{}, err
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
	if p.IdempotencyKey != "" && len(p.IdempotencyKey) > eventstore.MaxKeyLen {
		return SaveResult{}, inputErrorf("idempotency_key may be at most %d bytes", eventstore.MaxKeyLen)
	}
	var r SaveResult
	var parentOut *string
	err = q.QueryRow(ctx, saveSQL,
		p.WorkflowID, nilIfEmpty(p.CheckpointID), p.Namespace, nilIfEmpty(p.NodeID), nilIfEmpty(p.ParentID), string(p.State), versions, extra,
		expected, meta, writes, string(evMeta), nilIfEmpty(p.IdempotencyKey)).
		Scan(&r.CheckpointID, &parentOut, &r.Version, &r.Duplicate, &r.CreatedAt)
	if err != nil {
		if c := eventstore.AsConflict(err, StreamID(p.WorkflowID), expected); c != nil {
			return r, c
		}
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "CA004" {
			return r, &CheckpointConflictError{WorkflowID: p.WorkflowID, CheckpointID: p.CheckpointID}
		}
		err = translate(err, p.WorkflowID)
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return r, nf
		}
		return r, fmt.Errorf("save checkpoint of %s: %w", p.WorkflowID, err)
	}
	if parentOut != nil {
		r.ParentID = *parentOut
	}
	return r, nil
}

// checkWrites checks pending writes; what names the argument in errors.
func checkWrites(what string, ws []PendingWrite, needTask bool) error {
	for i, w := range ws {
		if (needTask && w.TaskID == "") || w.Channel == "" {
			if needTask {
				return inputErrorf("%s[%d]: task_id and channel are required", what, i)
			}
			return inputErrorf("%s[%d]: channel is required", what, i)
		}
		if len(w.Channel) > MaxNameLen || len(w.TaskID) > MaxIDLen {
			return inputErrorf("%s[%d]: channel may be at most %d bytes and task_id %d", what, i, MaxNameLen, MaxIDLen)
		}
		if len(w.Value) > 0 && !json.Valid(w.Value) {
			return inputErrorf("%s[%d].value is not valid JSON", what, i)
		}
	}
	return nil
}

func scanCheckpoint(r pgx.Row, withState bool) (Checkpoint, error) {
	var c Checkpoint
	var versions, extra, writes, state []byte
	dest := []any{&c.ID, &c.WorkflowID, &c.Namespace, &c.NodeID, &c.ParentID, &c.Metadata, &c.Version, &c.CreatedAt, &versions, &extra, &writes}
	if withState {
		dest = append(dest, &state)
	}
	if err := r.Scan(dest...); err != nil {
		return c, err
	}
	c.ChannelVersions, c.Extra = versions, extra
	if withState {
		if state == nil {
			state = []byte("null")
		}
		c.State = state
	}
	if err := json.Unmarshal(writes, &c.PendingWrites); err != nil {
		return c, fmt.Errorf("decode pending writes of %s: %w", c.ID, err)
	}
	return c, nil
}

// Load returns a checkpoint with its state and pending writes: the namespace's newest (the
// greatest id) unless checkpointID names one.
func (s *Store) Load(ctx context.Context, workflowID, checkpointID, namespace string) (*Checkpoint, error) {
	if err := checkID("workflow_id", workflowID); err != nil {
		return nil, err
	}
	var row pgx.Row
	if checkpointID != "" {
		row = s.pool.QueryRow(ctx, loadCheckpointSQL, workflowID, checkpointID)
	} else {
		row = s.pool.QueryRow(ctx, loadLatestCheckpointSQL, workflowID, namespace)
	}
	c, err := scanCheckpoint(row, true)
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
	return &c, nil
}

// ListParams select checkpoints to list, greatest id (newest) first.
type ListParams struct {
	// WorkflowID lists one workflow's checkpoints; "" lists every workflow's whose id starts
	// with WorkflowPrefix.
	WorkflowID     string
	WorkflowPrefix string
	Namespace      *string         // nil: every namespace
	Before         string          // only ids that sort before this one, as strings (keyset pagination)
	Limit          int             // default 50, at most 1000
	Metadata       json.RawMessage // only checkpoints whose metadata contains this object
	IncludeState   bool            // put each checkpoint's state together too
}

// List returns checkpoints with their metadata and pending writes, greatest id first; their
// state only with IncludeState.
func (s *Store) List(ctx context.Context, p ListParams) ([]Checkpoint, error) {
	if p.WorkflowID != "" {
		if err := checkID("workflow_id", p.WorkflowID); err != nil {
			return nil, err
		}
		if p.WorkflowPrefix != "" {
			return nil, inputErrorf("give workflow_id or workflow_prefix, not both")
		}
	}
	if len(p.WorkflowPrefix) > MaxIDLen || len(p.Before) > MaxIDLen {
		return nil, inputErrorf("workflow_prefix and before may be at most %d bytes", MaxIDLen)
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
	query := listCheckpointsSQL
	if p.IncludeState {
		query = listCheckpointsWithStateSQL
	}
	rows, err := s.pool.Query(ctx, query, nilIfEmpty(p.WorkflowID), p.WorkflowPrefix, p.Namespace, nilIfEmpty(p.Before), filter, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	cps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Checkpoint, error) { return scanCheckpoint(r, p.IncludeState) })
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	if len(cps) == 0 && p.WorkflowID != "" {
		if _, err := s.Get(ctx, p.WorkflowID); err != nil {
			return nil, err
		}
	}
	return cps, nil
}
