package mcp

import (
	"context"
	"encoding/json"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// WorkflowIDArgs name one workflow.
type WorkflowIDArgs struct {
	WorkflowID string `json:"workflow_id"`
}

// WorkflowStartArgs are the arguments of workflow_start.
type WorkflowStartArgs struct {
	Name       string          `json:"name"`
	Input      json.RawMessage `json:"input,omitempty" jsonschema:"any JSON"`
	WorkflowID string          `json:"workflow_id,omitempty" jsonschema:"your own id, e.g. a thread_id"`
	Metadata   json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object"`
}

// CheckpointSaveArgs are the arguments of checkpoint_save.
type CheckpointSaveArgs struct {
	WorkflowID      string                    `json:"workflow_id" jsonschema:"a new one is started"`
	CheckpointID    string                    `json:"checkpoint_id,omitempty" jsonschema:"your id; saving it again is a no-op"`
	NodeID          string                    `json:"node_id,omitempty" jsonschema:"the step that produced the state"`
	State           json.RawMessage           `json:"state,omitempty" jsonschema:"any JSON; with channel_versions, new versions' values only"`
	ChannelVersions json.RawMessage           `json:"channel_versions,omitempty" jsonschema:"channel → version"`
	Extra           json.RawMessage           `json:"extra,omitempty" jsonschema:"a JSON object"`
	WorkflowName    string                    `json:"workflow_name,omitempty"`
	Namespace       string                    `json:"namespace,omitempty" jsonschema:"subgraph; default the top level"`
	ParentID        string                    `json:"parent_id,omitempty" jsonschema:"default the newest (none with checkpoint_id)"`
	ExpectedVersion *int64                    `json:"expected_version,omitempty" jsonschema:"the version you last saw"`
	PendingWrites   []checkpoint.PendingWrite `json:"pending_writes,omitempty" jsonschema:"writes not yet in a checkpoint"`
	Metadata        json.RawMessage           `json:"metadata,omitempty" jsonschema:"a JSON object; checkpoint_list filters on it"`
	IdempotencyKey  string                    `json:"idempotency_key,omitempty"`
}

// CheckpointLoadArgs are the arguments of checkpoint_load.
type CheckpointLoadArgs struct {
	WorkflowID   string `json:"workflow_id"`
	CheckpointID string `json:"checkpoint_id,omitempty" jsonschema:"default the newest"`
	Namespace    string `json:"namespace,omitempty" jsonschema:"default the top level"`
}

// CheckpointListArgs are the arguments of checkpoint_list.
type CheckpointListArgs struct {
	WorkflowID     string          `json:"workflow_id,omitempty" jsonschema:"default all starting with workflow_prefix"`
	WorkflowPrefix string          `json:"workflow_prefix,omitempty"`
	Namespace      *string         `json:"namespace,omitempty" jsonschema:"\"\" is the top level; default all"`
	Before         string          `json:"before,omitempty" jsonschema:"a checkpoint id: list older ones"`
	Limit          int             `json:"limit,omitempty" jsonschema:"default 50, at most 1000"`
	Metadata       json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object to match"`
	IncludeState   bool            `json:"include_state,omitempty"`
}

// CheckpointPutWritesArgs are the arguments of checkpoint_put_writes.
type CheckpointPutWritesArgs struct {
	WorkflowID   string        `json:"workflow_id"`
	CheckpointID string        `json:"checkpoint_id"`
	Namespace    string        `json:"namespace,omitempty" jsonschema:"default the top level"`
	TaskID       string        `json:"task_id"`
	TaskPath     string        `json:"task_path,omitempty"`
	Writes       []PutWriteArg `json:"writes" jsonschema:"in order"`
}

// PutWriteArg is one write of checkpoint_put_writes.
type PutWriteArg struct {
	Channel string          `json:"channel"`
	Value   json.RawMessage `json:"value,omitempty" jsonschema:"any JSON"`
	Idx     *int            `json:"idx,omitempty" jsonschema:"default the place in the list"`
}

// CheckpointListResult lists checkpoints, greatest id first, with their pending writes.
type CheckpointListResult struct {
	Checkpoints []checkpoint.Checkpoint `json:"checkpoints"`
}

// WorkflowInterruptArgs are the arguments of workflow_interrupt.
type WorkflowInterruptArgs struct {
	WorkflowID string          `json:"workflow_id"`
	Reason     string          `json:"reason,omitempty"`
	Payload    json.RawMessage `json:"payload,omitempty" jsonschema:"what the human is asked, any JSON"`
}

// WorkflowResumeArgs are the arguments of workflow_resume.
type WorkflowResumeArgs struct {
	WorkflowID string          `json:"workflow_id"`
	Response   json.RawMessage `json:"response" jsonschema:"any JSON"`
}

// WorkflowCompleteArgs are the arguments of workflow_complete.
type WorkflowCompleteArgs struct {
	WorkflowID string          `json:"workflow_id"`
	Output     json.RawMessage `json:"output,omitempty" jsonschema:"any JSON"`
}

// WorkflowFailArgs are the arguments of workflow_fail.
type WorkflowFailArgs struct {
	WorkflowID string `json:"workflow_id"`
	Error      string `json:"error"`
}

// WorkflowListArgs are the arguments of workflow_list.
type WorkflowListArgs struct {
	Status string `json:"status,omitempty" jsonschema:"pending, running, interrupted, completed, failed or cancelled"`
	Name   string `json:"name,omitempty"`
	Limit  int    `json:"limit,omitempty" jsonschema:"default 50, at most 1000"`
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
}

// WorkflowListResult is a page of workflows.
type WorkflowListResult struct {
	Workflows  []checkpoint.Workflow `json:"workflows"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// WorkflowHistoryArgs are the arguments of workflow_history.
type WorkflowHistoryArgs struct {
	WorkflowID   string `json:"workflow_id"`
	AfterVersion int64  `json:"after_version,omitempty" jsonschema:"the last version seen"`
	Limit        int    `json:"limit,omitempty" jsonschema:"default 100, at most 1000"`
}

// WorkflowHistoryResult is a workflow's events, oldest first.
type WorkflowHistoryResult struct {
	Events []eventstore.Event `json:"events"`
}

// WorkflowForkArgs are the arguments of workflow_fork.
type WorkflowForkArgs struct {
	WorkflowID   string `json:"workflow_id"`
	CheckpointID string `json:"checkpoint_id"`
	Name         string `json:"name,omitempty"`
}

// WorkflowForkResult is the new workflow and its first checkpoint.
type WorkflowForkResult struct {
	Workflow   *checkpoint.Workflow   `json:"workflow"`
	Checkpoint *checkpoint.SaveResult `json:"checkpoint"`
}

// WorkflowDeleteResult confirms a deletion.
type WorkflowDeleteResult struct {
	WorkflowID string `json:"workflow_id"`
	Deleted    bool   `json:"deleted"`
}

// addTool registers a typed tool with schemas that understand json.RawMessage. In read-only mode
// a tool whose annotations do not say it is read-only refuses every call.
func addTool[In, Out any](s *Server, tool *sdk.Tool, h func(context.Context, In) (Out, error)) {
	if s.cfg.ReadOnly && (tool.Annotations == nil || !tool.Annotations.ReadOnlyHint) {
		name := tool.Name
		h = func(context.Context, In) (Out, error) {
			var zero Out
			return zero, &callerr.Input{Msg: fmt.Sprintf("cairn runs read-only (--read-only / CAIRN_READ_ONLY): %s writes, so it is refused", name)}
		}
	}
	tool.InputSchema = mustSchema[In]()
	tool.OutputSchema = resultSchema[Out]()
	s.addRawTool(tool, typed(s, tool.Name, h))
}

// readAnnotations and writeAnnotations are the hints of the domain tools: a read, or an
// additive write; a destructive tool sets its own. openWorldHint is left at its default (true):
// rows other agents and people wrote are outside input a host should treat as such, and saying
// so on every tool would cost 880 bytes of every conversation's context.
func readAnnotations() *sdk.ToolAnnotations {
	return &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true}
}

func writeAnnotations() *sdk.ToolAnnotations {
	return &sdk.ToolAnnotations{DestructiveHint: ptr(false)}
}

func (s *Server) addCheckpointTools() {
	cp := s.checkpoints
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "workflow_start", Title: "Start a workflow", Annotations: write,
		Description: `Start a workflow (a thread), status running. Example: {"name": "deploy", "input": {"service": "nginx"}}`},
		func(ctx context.Context, in WorkflowStartArgs) (*checkpoint.Workflow, error) {
			return cp.Start(ctx, checkpoint.StartParams{ID: in.WorkflowID, Name: in.Name, Input: in.Input, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_save", Title: "Save a checkpoint", Annotations: write,
		Description: `Save the state after a step. With expected_version a concurrent writer gets a conflict; with idempotency_key a retry writes nothing.
Example: {"workflow_id": "wf-1", "node_id": "plan", "state": {"messages": []}, "expected_version": 3}`},
		func(ctx context.Context, in CheckpointSaveArgs) (checkpoint.SaveResult, error) {
			return cp.Save(ctx, checkpoint.SaveParams{WorkflowID: in.WorkflowID, CheckpointID: in.CheckpointID, NodeID: in.NodeID,
				Namespace: in.Namespace, State: in.State, ChannelVersions: in.ChannelVersions, Extra: in.Extra, WorkflowName: in.WorkflowName,
				ParentID: in.ParentID, ExpectedVersion: in.ExpectedVersion, PendingWrites: in.PendingWrites, Metadata: in.Metadata,
				IdempotencyKey: in.IdempotencyKey, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_load", Title: "Load a checkpoint", Annotations: ro,
		Description: `The newest checkpoint, or checkpoint_id, with state and pending writes, to resume from.`},
		func(ctx context.Context, in CheckpointLoadArgs) (*checkpoint.Checkpoint, error) {
			return cp.Load(ctx, in.WorkflowID, in.CheckpointID, in.Namespace)
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_list", Title: "List checkpoints", Annotations: ro,
		Description: `Checkpoints, newest (greatest id) first, with pending writes; state with include_state. Example: {"workflow_id": "wf-1", "limit": 20}`},
		func(ctx context.Context, in CheckpointListArgs) (CheckpointListResult, error) {
			cps, err := cp.List(ctx, checkpoint.ListParams{WorkflowID: in.WorkflowID, WorkflowPrefix: in.WorkflowPrefix, Namespace: in.Namespace,
				Before: in.Before, Limit: in.Limit, Metadata: in.Metadata, IncludeState: in.IncludeState})
			return CheckpointListResult{Checkpoints: nonNil(cps)}, err
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_put_writes", Title: "Add a task's writes", Annotations: write,
		Description: `LangGraph's putWrites: a (task_id, idx) keeps its first write; __interrupt__ interrupts the workflow, __resume__ resumes it.
Example: {"workflow_id": "t-1", "checkpoint_id": "c-1", "task_id": "t1", "writes": [{"channel": "x", "value": 1}]}`},
		func(ctx context.Context, in CheckpointPutWritesArgs) (checkpoint.PutWritesResult, error) {
			ws := make([]checkpoint.PendingWrite, len(in.Writes))
			for i, w := range in.Writes {
				ws[i] = checkpoint.PendingWrite{Channel: w.Channel, Value: w.Value, Idx: w.Idx}
			}
			return cp.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: in.WorkflowID, CheckpointID: in.CheckpointID, Namespace: in.Namespace,
				TaskID: in.TaskID, TaskPath: in.TaskPath, Writes: ws, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "workflow_interrupt", Title: "Interrupt for a human decision", Annotations: write,
		Description: `Pause a workflow for a human until workflow_resume. Example: {"workflow_id": "wf-1", "reason": "approve?", "payload": {"env": "prod"}}`},
		func(ctx context.Context, in WorkflowInterruptArgs) (*checkpoint.Workflow, error) {
			return cp.Interrupt(ctx, in.WorkflowID, in.Reason, in.Payload, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_resume", Title: "Resume with a response", Annotations: write,
		Description: `Resume an interrupted workflow with the human's response. Example: {"workflow_id": "wf-1", "response": "Approve"}`},
		func(ctx context.Context, in WorkflowResumeArgs) (*checkpoint.Resumed, error) {
			return cp.Resume(ctx, in.WorkflowID, in.Response, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_complete", Title: "Complete a workflow", Annotations: write,
		Description: `Mark a workflow completed. Example: {"workflow_id": "wf-1", "output": {"ok": true}}`},
		func(ctx context.Context, in WorkflowCompleteArgs) (*checkpoint.Workflow, error) {
			return cp.Complete(ctx, in.WorkflowID, in.Output, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_fail", Title: "Fail a workflow", Annotations: write,
		Description: `Mark a workflow failed. Example: {"workflow_id": "wf-1", "error": "timed out"}`},
		func(ctx context.Context, in WorkflowFailArgs) (*checkpoint.Workflow, error) {
			return cp.Fail(ctx, in.WorkflowID, in.Error, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_get", Title: "Get a workflow", Annotations: ro,
		Description: `Get a workflow.`},
		func(ctx context.Context, in WorkflowIDArgs) (*checkpoint.Workflow, error) {
			return cp.Get(ctx, in.WorkflowID)
		})
	addTool(s, &sdk.Tool{Name: "workflow_list", Title: "List workflows", Annotations: ro,
		Description: `Workflows, most recently updated first; status "interrupted" lists those waiting for a human. Example: {"status": "interrupted"}`},
		func(ctx context.Context, in WorkflowListArgs) (WorkflowListResult, error) {
			ws, next, err := cp.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: in.Status, Name: in.Name, Limit: in.Limit, Cursor: in.Cursor})
			return WorkflowListResult{Workflows: nonNil(ws), NextCursor: next}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_history", Title: "Workflow history", Annotations: ro,
		Description: `A workflow's events, oldest first.`},
		func(ctx context.Context, in WorkflowHistoryArgs) (WorkflowHistoryResult, error) {
			evs, err := cp.History(ctx, in.WorkflowID, in.AfterVersion, in.Limit)
			return WorkflowHistoryResult{Events: nonNil(evs)}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_fork", Title: "Fork from a checkpoint", Annotations: write,
		Description: `Start a new workflow from another's checkpoint; the original is untouched. Example: {"workflow_id": "wf-1", "checkpoint_id": "cp-7"}`},
		func(ctx context.Context, in WorkflowForkArgs) (WorkflowForkResult, error) {
			w, res, err := cp.Fork(ctx, in.WorkflowID, in.CheckpointID, in.Name, "mcp")
			return WorkflowForkResult{Workflow: w, Checkpoint: res}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_delete", Title: "Delete a workflow",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: false},
		Description: `Delete a workflow and its checkpoints; its event history stays.`},
		func(ctx context.Context, in WorkflowIDArgs) (WorkflowDeleteResult, error) {
			if err := cp.Delete(ctx, in.WorkflowID, "mcp"); err != nil {
				return WorkflowDeleteResult{}, err
			}
			return WorkflowDeleteResult{WorkflowID: in.WorkflowID, Deleted: true}, nil
		})
}
