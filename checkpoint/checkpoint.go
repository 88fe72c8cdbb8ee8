// Package checkpoint keeps workflows as event streams: agent frameworks start a workflow, save
// a checkpoint after each step, interrupt it for a human decision, resume it, fork it from any
// earlier checkpoint and read its history. Every change is an event on the stream
// "workflow:<id>" (internal/eventstore), and the tables workflows, workflow_checkpoints,
// workflow_steps and checkpoint_writes are projections updated in the same transaction.
//
// Checkpoint state is stored by channel: each top-level value of the state object (and each
// element of a top-level array, such as a message list) is stored once per workflow under its
// content hash, so storage grows with what changed. The newest checkpoint of a namespace also
// keeps the whole state, so loading it is one row however long the history; an older one is
// rebuilt from its channel map with one index lookup per value it holds.
package checkpoint

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// Workflow statuses.
const (
	StatusPending     = "pending"
	StatusRunning     = "running"
	StatusInterrupted = "interrupted"
	StatusCompleted   = "completed"
	StatusFailed      = "failed"
	StatusCancelled   = "cancelled"
)

// Event types on a workflow's stream.
const (
	EventStarted     = "WorkflowStarted"
	EventSaved       = "CheckpointSaved"
	EventInterrupted = "WorkflowInterrupted"
	EventResumed     = "WorkflowResumed"
	EventCompleted   = "WorkflowCompleted"
	EventFailed      = "WorkflowFailed"
	EventDeleted     = "WorkflowDeleted"
)

// Limits that keep ids and names well under PostgreSQL's btree key limit.
const (
	MaxIDLen   = 200
	MaxNameLen = 500
)

// StreamID is the event stream of a workflow.
func StreamID(workflowID string) string { return "workflow:" + workflowID }

// Store is the checkpoint API over a pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on the pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Workflow is a workflow's current state (a LangGraph thread).
type Workflow struct {
	ID               string          `json:"id"`
	Name             string          `json:"name"`
	Status           string          `json:"status"`
	Input            json.RawMessage `json:"input,omitempty"`
	Output           json.RawMessage `json:"output,omitempty"`
	Error            string          `json:"error,omitempty"`
	Interrupt        *Interrupt      `json:"interrupt,omitempty"`
	HeadCheckpointID string          `json:"head_checkpoint_id,omitempty"`
	Version          int64           `json:"version"`
	ParentWorkflowID string          `json:"parent_workflow_id,omitempty"`
	ForkedFrom       string          `json:"forked_from,omitempty"`
	Metadata         json.RawMessage `json:"metadata"`
	CreatedAt        time.Time       `json:"created_at"`
	UpdatedAt        time.Time       `json:"updated_at"`
}

// Interrupt is the question a workflow waits on.
type Interrupt struct {
	Reason  string          `json:"reason,omitempty"`
	Payload json.RawMessage `json:"payload,omitempty"`
	At      time.Time       `json:"at"`
}

// Checkpoint is a saved state of a workflow.
type Checkpoint struct {
	ID         string          `json:"checkpoint_id"`
	WorkflowID string          `json:"workflow_id"`
	Namespace  string          `json:"namespace"`
	NodeID     string          `json:"node_id,omitempty"`
	ParentID   string          `json:"parent_id,omitempty"`
	State      json.RawMessage `json:"state,omitempty"` // only when loaded, or listed with IncludeState
	// ChannelVersions and Extra are what a save with versioned channels gave.
	ChannelVersions json.RawMessage `json:"channel_versions,omitempty"`
	Extra           json.RawMessage `json:"extra,omitempty"`
	Metadata        json.RawMessage `json:"metadata"`
	// PendingWrites are ordered by task path, task id, then index: the order frameworks replay them in.
	PendingWrites []PendingWrite `json:"pending_writes"`
	Version       int64          `json:"version"`
	CreatedAt     time.Time      `json:"created_at"`
}

// PendingWrite is a write a task made after a checkpoint, not yet folded into a checkpoint.
type PendingWrite struct {
	TaskID   string          `json:"task_id"`
	Idx      *int            `json:"idx,omitempty"` // position among the task's writes; default its place in the list
	Channel  string          `json:"channel"`
	Value    json.RawMessage `json:"value"`
	TaskPath string          `json:"task_path,omitempty"`
}

// NotFoundError says a workflow or checkpoint does not exist.
type NotFoundError struct {
	What, ID string
}

// CallerCanFix marks NotFoundError as the caller's to fix.
func (*NotFoundError) CallerCanFix() {}

func (e *NotFoundError) Error() string {
	if e.What == "workflow" {
		return fmt.Sprintf("workflow %q does not exist (workflow_list shows the workflows there are)", e.ID)
	}
	return fmt.Sprintf("%s %q does not exist (checkpoint_list shows a workflow's checkpoints)", e.What, e.ID)
}

// StateError says the workflow's status does not allow the operation.
type StateError struct {
	WorkflowID, Status, Op string
}

// CallerCanFix marks StateError as the caller's to fix.
func (*StateError) CallerCanFix() {}

func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s workflow %q: it is %s", e.Op, e.WorkflowID, e.Status)
}

// ConflictError is eventstore's: another writer saved first.
type ConflictError = eventstore.ConflictError

func inputErrorf(format string, args ...any) error { return callerr.Inputf(format, args...) }

func checkID(what, id string) error {
	if id == "" {
		return inputErrorf("%s is required", what)
	}
	if len(id) > MaxIDLen {
		return inputErrorf("%s is %d bytes long; at most %d", what, len(id), MaxIDLen)
	}
	return nil
}

// jsonOrNull returns v as JSON, or nil for an empty value.
func jsonOrNull(v json.RawMessage) (any, error) {
	if len(v) == 0 {
		return nil, nil
	}
	if !json.Valid(v) {
		return nil, errors.New("not valid JSON")
	}
	return string(v), nil
}

// translate turns the SQL functions' errors into the package's typed errors.
func translate(err error, workflowID string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "CA002":
			return &NotFoundError{What: "workflow", ID: workflowID}
		case "CA003":
			return &callerr.Input{Msg: pe.Message + "; start a new workflow or fork this one (workflow_fork)"}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &NotFoundError{What: "workflow", ID: workflowID}
	}
	return err
}
