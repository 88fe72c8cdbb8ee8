package checkpoint

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// StartParams describe a new workflow.
type StartParams struct {
	ID       string // default: a new UUIDv7; agent frameworks pass their thread id
	Name     string
	Input    json.RawMessage
	Metadata json.RawMessage
	Actor    string
}

func scanWorkflow(r pgx.Row) (*Workflow, error) {
	var w Workflow
	var intr []byte
	err := r.Scan(&w.ID, &w.Name, &w.Status, &w.Input, &w.Output, &w.Error, &intr, &w.HeadCheckpointID,
		&w.Version, &w.ParentWorkflowID, &w.ForkedFrom, &w.Metadata, &w.CreatedAt, &w.UpdatedAt)
	if err != nil {
		return nil, err
	}
	if len(intr) > 0 {
		w.Interrupt = &Interrupt{}
		if err := json.Unmarshal(intr, w.Interrupt); err != nil {
			return nil, fmt.Errorf("decode interrupt of %s: %w", w.ID, err)
		}
	}
	return &w, nil
}

// Start creates a workflow in status running. With an id that exists, it fails with an
// *callerr.Input (start is not an upsert: two runs must not share a thread by accident).
func (s *Store) Start(ctx context.Context, p StartParams) (*Workflow, error) {
	return s.start(ctx, p, "", "", nil)
}

// start starts a workflow; then, when given, runs more in the same transaction (a fork's first
// checkpoint), so that either both happen or neither.
func (s *Store) start(ctx context.Context, p StartParams, parent, forkedFrom string, then func(pgx.Tx, *Workflow) error) (*Workflow, error) {
	if p.ID == "" {
		p.ID = newID()
	}
	if err := checkID("workflow_id", p.ID); err != nil {
		return nil, err
	}
	if len(p.Name) > MaxNameLen {
		return nil, inputErrorf("name may be at most %d bytes", MaxNameLen)
	}
	input, err := jsonOrNull(p.Input)
	if err != nil {
		return nil, inputErrorf("input: %v", err)
	}
	meta, err := callerr.JSONObject("metadata", p.Metadata)
	if err != nil {
		return nil, err
	}
	ev := eventstore.NewEvent{Type: EventStarted,
		Data: map[string]any{"name": p.Name, "input": json.RawMessage(orNull(p.Input)), "metadata": json.RawMessage(meta),
			"parent_workflow_id": nilIfEmpty(parent), "forked_from": nilIfEmpty(forkedFrom)},
		Metadata: eventstore.Metadata{Actor: p.Actor}}
	var w *Workflow
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A new id has no stream. An id whose workflow was deleted has one ending in
		// WorkflowDeleted: it may start again, continuing that stream.
		var exists bool
		var deletedAt int64
		if err := tx.QueryRow(ctx, workflowExistsSQL, p.ID, StreamID(p.ID)).Scan(&exists, &deletedAt); err != nil {
			return err
		}
		if exists {
			return inputErrorf("workflow %q exists already: resume it with checkpoint_load / workflow_resume, or start one with another id", p.ID)
		}
		res, err := eventstore.Append(ctx, tx, StreamID(p.ID), []eventstore.NewEvent{ev}, eventstore.AppendOptions{ExpectedVersion: deletedAt})
		if err != nil {
			var ce *eventstore.ConflictError
			if errors.As(err, &ce) {
				return inputErrorf("workflow %q was started by another caller at the same moment; use another id or load that one", p.ID)
			}
			return err
		}
		w, err = scanWorkflow(tx.QueryRow(ctx, insertWorkflowSQL, p.ID, p.Name, input, meta, res.LastVersion, nilIfEmpty(parent), nilIfEmpty(forkedFrom)))
		if err != nil || then == nil {
			return err
		}
		return then(tx, w)
	})
	if err != nil {
		var ie *callerr.Input
		if errors.As(err, &ie) {
			return nil, ie
		}
		return nil, fmt.Errorf("start workflow %s: %w", p.ID, err)
	}
	return w, nil
}

func orNull(v json.RawMessage) []byte {
	if len(v) == 0 {
		return []byte("null")
	}
	return v
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Get returns a workflow.
func (s *Store) Get(ctx context.Context, id string) (*Workflow, error) {
	if err := checkID("workflow_id", id); err != nil {
		return nil, err
	}
	w, err := scanWorkflow(s.pool.QueryRow(ctx, getWorkflowSQL, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, &NotFoundError{What: "workflow", ID: id}
	}
	if err != nil {
		return nil, fmt.Errorf("get workflow %s: %w", id, err)
	}
	return w, nil
}

// ListWorkflowsParams filter workflow_list; results are newest-updated first.
type ListWorkflowsParams struct {
	Status string // e.g. "interrupted": the inbox of workflows waiting for a human
	Name   string
	Limit  int    // default 50, at most 1000
	Cursor string // from the previous page's NextCursor
}

// ListWorkflows returns a page of workflows and the cursor of the next page ("" at the end).
func (s *Store) ListWorkflows(ctx context.Context, p ListWorkflowsParams) ([]Workflow, string, error) {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, "", inputErrorf("limit %d: use 1 to 1000", p.Limit)
	}
	if p.Status != "" && !validStatus(p.Status) {
		return nil, "", inputErrorf("status %q: use pending, running, interrupted, completed, failed or cancelled", p.Status)
	}
	var afterTime *time.Time
	var afterID *string
	if p.Cursor != "" {
		t, id, err := decodeCursor(p.Cursor)
		if err != nil {
			return nil, "", err
		}
		afterTime, afterID = &t, &id
	}
	rows, err := s.pool.Query(ctx, listWorkflowsSQL, p.Status, p.Name, afterTime, afterID, p.Limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Workflow, error) {
		w, err := scanWorkflow(r)
		if err != nil {
			return Workflow{}, err
		}
		return *w, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list workflows: %w", err)
	}
	next := ""
	if len(ws) > p.Limit {
		ws = ws[:p.Limit]
		last := ws[len(ws)-1]
		next = encodeCursor(last.UpdatedAt, last.ID)
	}
	return ws, next, nil
}

// WorkflowIDs returns, by id, up to limit ids of workflows that start with prefix: what a
// client completing a workflow id is offered.
func (s *Store) WorkflowIDs(ctx context.Context, prefix string, limit int) ([]string, error) {
	if !utf8.ValidString(prefix) || strings.ContainsRune(prefix, 0) {
		return []string{}, nil // no id starts with what PostgreSQL text cannot hold
	}
	rows, err := s.pool.Query(ctx, workflowIDsSQL, prefix, limit)
	if err != nil {
		return nil, fmt.Errorf("list workflow ids: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list workflow ids: %w", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

func validStatus(s string) bool {
	switch s {
	case StatusPending, StatusRunning, StatusInterrupted, StatusCompleted, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(t.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	ts, id, ok := strings.Cut(string(b), "|")
	t, terr := time.Parse(time.RFC3339Nano, ts)
	if err != nil || !ok || terr != nil {
		return time.Time{}, "", inputErrorf("cursor %q is not one workflow_list returned", c)
	}
	return t, id, nil
}

// transition appends one event to a workflow whose status allows it and updates the projection
// with update, a query of workflow_sql.go that returns the workflow ($1 is the id, $2 the new
// version, args follow).
func (s *Store) transition(ctx context.Context, id, op string, allowed []string, ev eventstore.NewEvent, update string, args ...any) (*Workflow, error) {
	if err := checkID("workflow_id", id); err != nil {
		return nil, err
	}
	var w *Workflow
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var status string
		if err := tx.QueryRow(ctx, lockWorkflowSQL, id).Scan(&status); err != nil {
			return err
		}
		ok := false
		for _, a := range allowed {
			ok = ok || a == status
		}
		if !ok {
			return &StateError{WorkflowID: id, Status: status, Op: op}
		}
		res, err := eventstore.Append(ctx, tx, StreamID(id), []eventstore.NewEvent{ev}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion})
		if err != nil {
			return err
		}
		// now() is the event's created_at too (same transaction), so a rebuild reproduces it.
		w, err = scanWorkflow(tx.QueryRow(ctx, update, append([]any{id, res.LastVersion}, args...)...))
		return err
	})
	if err != nil {
		var se *StateError
		if errors.As(err, &se) {
			return nil, se
		}
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, &NotFoundError{What: "workflow", ID: id}
		}
		return nil, fmt.Errorf("%s workflow %s: %w", op, id, err)
	}
	return w, nil
}

var active = []string{StatusPending, StatusRunning}

// Interrupt stops a workflow for a human decision; payload is what the human is asked.
func (s *Store) Interrupt(ctx context.Context, id, reason string, payload json.RawMessage, actor string) (*Workflow, error) {
	if _, err := jsonOrNull(payload); err != nil {
		return nil, inputErrorf("payload: %v", err)
	}
	intr, _ := json.Marshal(map[string]any{"reason": reason, "payload": json.RawMessage(orNull(payload)), "at": time.Now().UTC()})
	return s.transition(ctx, id, "interrupt", active,
		eventstore.NewEvent{Type: EventInterrupted, Data: json.RawMessage(intr), Metadata: eventstore.Metadata{Actor: actor}},
		interruptWorkflowSQL, string(intr))
}

// Resumed is what Resume hands back: the workflow, the interrupt it answered and the response.
type Resumed struct {
	Workflow  *Workflow       `json:"workflow"`
	Interrupt *Interrupt      `json:"interrupt,omitempty"`
	Response  json.RawMessage `json:"response"`
}

// Resume records the response to an interrupted workflow as an event and sets it running again.
func (s *Store) Resume(ctx context.Context, id string, response json.RawMessage, actor string) (*Resumed, error) {
	if len(response) == 0 || !json.Valid(response) {
		return nil, inputErrorf("response is required: the human's answer as JSON (e.g. \"Approve\")")
	}
	before, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	w, err := s.transition(ctx, id, "resume", []string{StatusInterrupted},
		eventstore.NewEvent{Type: EventResumed, Data: map[string]any{"response": response}, Metadata: eventstore.Metadata{Actor: actor}},
		resumeWorkflowSQL)
	if err != nil {
		var se *StateError
		if errors.As(err, &se) {
			return nil, inputErrorf("workflow %q is %s, not interrupted: only an interrupted workflow can be resumed", id, se.Status)
		}
		return nil, err
	}
	return &Resumed{Workflow: w, Interrupt: before.Interrupt, Response: response}, nil
}

// Complete marks a workflow completed with its output.
func (s *Store) Complete(ctx context.Context, id string, output json.RawMessage, actor string) (*Workflow, error) {
	out, err := jsonOrNull(output)
	if err != nil {
		return nil, inputErrorf("output: %v", err)
	}
	return s.transition(ctx, id, "complete", []string{StatusPending, StatusRunning, StatusInterrupted},
		eventstore.NewEvent{Type: EventCompleted, Data: map[string]any{"output": json.RawMessage(orNull(output))}, Metadata: eventstore.Metadata{Actor: actor}},
		completeWorkflowSQL, out)
}

// Fail marks a workflow failed with an error message.
func (s *Store) Fail(ctx context.Context, id, errMsg, actor string) (*Workflow, error) {
	if errMsg == "" {
		return nil, inputErrorf("error is required: what went wrong")
	}
	return s.transition(ctx, id, "fail", []string{StatusPending, StatusRunning, StatusInterrupted},
		eventstore.NewEvent{Type: EventFailed, Data: map[string]any{"error": errMsg}, Metadata: eventstore.Metadata{Actor: actor}},
		failWorkflowSQL, errMsg)
}

// History returns the workflow's events after a version, oldest first.
func (s *Store) History(ctx context.Context, id string, afterVersion int64, limit int) ([]eventstore.Event, error) {
	if err := checkID("workflow_id", id); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, inputErrorf("limit %d: use 1 to 1000", limit)
	}
	evs, err := eventstore.ReadStream(ctx, s.pool, StreamID(id), afterVersion, limit)
	if err != nil {
		return nil, err
	}
	if len(evs) == 0 && afterVersion == 0 {
		if v, err := eventstore.StreamVersion(ctx, s.pool, StreamID(id)); err == nil && v == 0 {
			if _, err := s.Get(ctx, id); err != nil {
				return nil, err
			}
		}
	}
	return evs, nil
}

// Fork starts a new workflow from a checkpoint of another (time travel: the new workflow's
// history begins with that checkpoint's state; the original is untouched).
func (s *Store) Fork(ctx context.Context, id, checkpointID, name, actor string) (*Workflow, *SaveResult, error) {
	if err := checkID("checkpoint_id", checkpointID); err != nil {
		return nil, nil, err
	}
	src, err := s.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	cp, err := s.Load(ctx, id, checkpointID, "")
	if err != nil {
		return nil, nil, err
	}
	if name == "" {
		name = src.Name
	}
	meta, _ := json.Marshal(map[string]any{"forked_from": checkpointID, "source_workflow_id": id})
	var res SaveResult
	w, err := s.start(ctx, StartParams{Name: name, Input: src.Input, Metadata: src.Metadata, Actor: actor}, id, checkpointID,
		func(tx pgx.Tx, w *Workflow) error {
			var err error
			res, err = save(ctx, tx, SaveParams{WorkflowID: w.ID, NodeID: cp.NodeID, Namespace: cp.Namespace, State: cp.State,
				ChannelVersions: cp.ChannelVersions, Extra: cp.Extra, Metadata: meta, Actor: actor})
			return err
		})
	if err != nil {
		return nil, nil, err
	}
	w, err = s.Get(ctx, w.ID)
	return w, &res, err
}

// Delete removes a workflow with its checkpoints and steps. Its event stream stays, ending with
// a WorkflowDeleted event, so the history of what happened is not lost.
func (s *Store) Delete(ctx context.Context, id, actor string) error {
	if err := checkID("workflow_id", id); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The event first: it marks the transaction's writes to this workflow as described, so
		// the capture trigger does not record the delete a second time.
		_, err := eventstore.Append(ctx, tx, StreamID(id), []eventstore.NewEvent{{Type: EventDeleted, Metadata: eventstore.Metadata{Actor: actor}}},
			eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion})
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, deleteWorkflowSQL, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return &NotFoundError{What: "workflow", ID: id}
		}
		return nil
	})
	var nf *NotFoundError
	if errors.As(err, &nf) {
		return nf
	}
	if err != nil {
		return fmt.Errorf("delete workflow %s: %w", id, err)
	}
	return nil
}
