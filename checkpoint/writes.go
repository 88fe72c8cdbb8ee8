package checkpoint

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// Special channels of pending writes, as LangGraph names them. A write to one of them has a
// fixed negative index and replaces the task's earlier write there; __interrupt__ and
// __resume__ also interrupt and resume the workflow.
const (
	ChannelError     = "__error__"
	ChannelScheduled = "__scheduled__"
	ChannelInterrupt = "__interrupt__"
	ChannelResume    = "__resume__"
)

// PutWritesParams are a task's writes to add to an existing checkpoint.
type PutWritesParams struct {
	WorkflowID   string
	CheckpointID string
	Namespace    string
	TaskID       string
	TaskPath     string
	// Writes are the task's writes in order; a write's Idx defaults to its channel's special
	// index, else its place in the list. TaskID and TaskPath of the writes are ignored.
	Writes []PendingWrite
	Actor  string
}

// PutWritesResult says what a PutWrites did.
type PutWritesResult struct {
	WorkflowID   string `json:"workflow_id"`
	CheckpointID string `json:"checkpoint_id"`
	// Written counts the writes stored; a write whose (task, idx) was taken is not (the first
	// wins), unless it goes to a special channel.
	Written int    `json:"written"`
	Version int64  `json:"version"` // the workflow's version after the writes
	Status  string `json:"status"`  // the workflow's status after the writes
}

// PutWrites adds a task's writes to a checkpoint in one round trip (the checkpoint may still be
// on its way; a workflow id not seen before is started), as an event on the
// workflow's stream and rows of checkpoint_writes: LangGraph's putWrites. When every write goes
// to a special channel they replace the task's earlier writes at those indexes; otherwise a
// write whose (task, idx) is taken is dropped. A write to __interrupt__ interrupts a running
// workflow (workflow_list status=interrupted shows it, the write's value as payload); one to
// __resume__ resumes an interrupted one.
func (s *Store) PutWrites(ctx context.Context, p PutWritesParams) (PutWritesResult, error) {
	res := PutWritesResult{WorkflowID: p.WorkflowID, CheckpointID: p.CheckpointID}
	if err := checkID("workflow_id", p.WorkflowID); err != nil {
		return res, err
	}
	if err := checkID("checkpoint_id", p.CheckpointID); err != nil {
		return res, err
	}
	if err := checkID("task_id", p.TaskID); err != nil {
		return res, err
	}
	if len(p.Namespace) > MaxNameLen || len(p.TaskPath) > MaxNameLen {
		return res, inputErrorf("namespace and task_path may be at most %d bytes", MaxNameLen)
	}
	if len(p.Writes) == 0 {
		return res, inputErrorf("writes is empty: give the task's writes, e.g. [{\"channel\": \"messages\", \"value\": [...]}]")
	}
	if err := checkWrites("writes", p.Writes, false); err != nil {
		return res, err
	}
	type write struct {
		Channel string          `json:"channel"`
		Value   json.RawMessage `json:"value"`
		Idx     *int            `json:"idx,omitempty"`
	}
	ws := make([]write, len(p.Writes))
	for i, w := range p.Writes {
		ws[i] = write{Channel: w.Channel, Value: w.Value, Idx: w.Idx}
		if len(w.Value) == 0 {
			ws[i].Value = json.RawMessage("null")
		}
	}
	b, err := json.Marshal(ws)
	if err != nil {
		return res, fmt.Errorf("encode writes: %w", err)
	}
	evMeta, _ := json.Marshal(eventstore.Metadata{Actor: p.Actor})
	args := []any{p.WorkflowID, p.CheckpointID, p.Namespace, p.TaskID, p.TaskPath, string(b), string(evMeta)}
	err = s.pool.QueryRow(ctx, putWritesSQL, args...).Scan(&res.Version, &res.Written, &res.Status)
	if pe := (*pgconn.PgError)(nil); errors.As(err, &pe) && pe.Code == "CA002" {
		// The thread's first checkpoint is on its way (LangGraph writes before its put is done):
		// the writes start the workflow, as the save would.
		_, err = s.start(ctx, StartParams{ID: p.WorkflowID, Actor: p.Actor}, "", "", func(tx pgx.Tx, _ *Workflow) error {
			return tx.QueryRow(ctx, putWritesSQL, args...).Scan(&res.Version, &res.Written, &res.Status)
		})
		var ie *callerr.Input
		if errors.As(err, &ie) {
			if _, gerr := s.Get(ctx, p.WorkflowID); gerr == nil {
				err = s.pool.QueryRow(ctx, putWritesSQL, args...).Scan(&res.Version, &res.Written, &res.Status)
			}
		}
	}
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "CA005" {
			return res, inputErrorf("checkpoint %q of workflow %q is in another namespace than %q: give the checkpoint's namespace", p.CheckpointID, p.WorkflowID, p.Namespace)
		}
		err = translate(err, p.WorkflowID)
		var nf *NotFoundError
		if errors.As(err, &nf) {
			return res, nf
		}
		return res, fmt.Errorf("put writes to %s of %s: %w", p.CheckpointID, p.WorkflowID, err)
	}
	return res, nil
}
