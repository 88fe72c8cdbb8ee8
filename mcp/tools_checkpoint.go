package mcp

import (
	"context"
	"encoding/json"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/eventstore"
	"github.com/cairn-mcp/cairn/internal/sqlexec"
)

// WorkflowIDArgs name one workflow.
type WorkflowIDArgs struct {
	WorkflowID string `json:"workflow_id" jsonschema:"the workflow (thread) id"`
}

// WorkflowStartArgs are the arguments of workflow_start.
type WorkflowStartArgs struct {
	Name       string          `json:"name" jsonschema:"what the workflow is, e.g. deployment-approval"`
	Input      json.RawMessage `json:"input,omitempty" jsonschema:"the workflow's input, any JSON"`
	WorkflowID string          `json:"workflow_id,omitempty" jsonschema:"your own id for it (e.g. a LangGraph thread_id); default a new time-ordered id"`
	Metadata   json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object of your own"`
}

// CheckpointSaveArgs are the arguments of checkpoint_save.
type CheckpointSaveArgs struct {
	WorkflowID      string                    `json:"workflow_id" jsonschema:"the workflow; one not seen before is started"`
	CheckpointID    string                    `json:"checkpoint_id,omitempty" jsonschema:"your id for this checkpoint (e.g. LangGraph's); saving it again with the same content is a no-op; default a new time-ordered id"`
	NodeID          string                    `json:"node_id,omitempty" jsonschema:"the node (step) that produced this state"`
	State           json.RawMessage           `json:"state,omitempty" jsonschema:"the state, any JSON; an object is stored channel by channel, so unchanged values cost nothing. With channel_versions: only the new versions' values"`
	ChannelVersions json.RawMessage           `json:"channel_versions,omitempty" jsonschema:"channel → version for every channel; a channel whose value is not in state keeps the value saved under its version"`
	Extra           json.RawMessage           `json:"extra,omitempty" jsonschema:"a JSON object kept with the checkpoint and returned unchanged"`
	WorkflowName    string                    `json:"workflow_name,omitempty" jsonschema:"the name of a workflow this save starts"`
	Namespace       string                    `json:"namespace,omitempty" jsonschema:"subgraph namespace; default the top level"`
	ParentID        string                    `json:"parent_id,omitempty" jsonschema:"the checkpoint this one follows; default the newest in the namespace, or none with checkpoint_id"`
	ExpectedVersion *int64                    `json:"expected_version,omitempty" jsonschema:"the workflow version you last saw: the save fails with a conflict if another writer saved since"`
	PendingWrites   []checkpoint.PendingWrite `json:"pending_writes,omitempty" jsonschema:"writes of tasks not yet folded into a checkpoint: [{task_id, channel, value, idx?}]; the first write of a (task_id, idx) wins"`
	Metadata        json.RawMessage           `json:"metadata,omitempty" jsonschema:"a JSON object of your own; checkpoint_list can filter on it"`
	IdempotencyKey  string                    `json:"idempotency_key,omitempty" jsonschema:"the same key again returns the first save's checkpoint and writes nothing: safe retries"`
}

// CheckpointLoadArgs are the arguments of checkpoint_load.
type CheckpointLoadArgs struct {
	WorkflowID   string `json:"workflow_id" jsonschema:"the workflow"`
	CheckpointID string `json:"checkpoint_id,omitempty" jsonschema:"a checkpoint to load (time travel); default the newest"`
	Namespace    string `json:"namespace,omitempty" jsonschema:"namespace whose newest checkpoint to load; default the top level"`
}

// CheckpointListArgs are the arguments of checkpoint_list.
type CheckpointListArgs struct {
	WorkflowID     string          `json:"workflow_id,omitempty" jsonschema:"the workflow; default every workflow whose id starts with workflow_prefix"`
	WorkflowPrefix string          `json:"workflow_prefix,omitempty" jsonschema:"without workflow_id: only workflows whose id starts with this"`
	Namespace      *string         `json:"namespace,omitempty" jsonschema:"only this namespace (\"\" is the top level); default every namespace"`
	Before         string          `json:"before,omitempty" jsonschema:"only checkpoint ids that sort before this one (the next page)"`
	Limit          int             `json:"limit,omitempty" jsonschema:"how many (default 50, at most 1000)"`
	Metadata       json.RawMessage `json:"metadata,omitempty" jsonschema:"only checkpoints whose metadata contains this JSON object"`
	IncludeState   bool            `json:"include_state,omitempty" jsonschema:"also return each checkpoint's state"`
}

// CheckpointPutWritesArgs are the arguments of checkpoint_put_writes.
type CheckpointPutWritesArgs struct {
	WorkflowID   string        `json:"workflow_id" jsonschema:"the workflow"`
	CheckpointID string        `json:"checkpoint_id" jsonschema:"the checkpoint the writes belong to"`
	Namespace    string        `json:"namespace,omitempty" jsonschema:"the checkpoint's namespace; default the top level"`
	TaskID       string        `json:"task_id" jsonschema:"the task that wrote"`
	TaskPath     string        `json:"task_path,omitempty" jsonschema:"the task's path"`
	Writes       []PutWriteArg `json:"writes" jsonschema:"the task's writes, in order"`
}

// PutWriteArg is one write of checkpoint_put_writes.
type PutWriteArg struct {
	Channel string          `json:"channel" jsonschema:"the channel written"`
	Value   json.RawMessage `json:"value,omitempty" jsonschema:"the value, any JSON"`
	Idx     *int            `json:"idx,omitempty" jsonschema:"the write's index; default the special channel's, else its place in the list"`
}

// CheckpointListResult lists checkpoints, greatest id first, with their pending writes.
type CheckpointListResult struct {
	Checkpoints []checkpoint.Checkpoint `json:"checkpoints"`
}

// WorkflowInterruptArgs are the arguments of workflow_interrupt.
type WorkflowInterruptArgs struct {
	WorkflowID string          `json:"workflow_id" jsonschema:"the workflow"`
	Reason     string          `json:"reason,omitempty" jsonschema:"why it waits, e.g. needs approval"`
	Payload    json.RawMessage `json:"payload,omitempty" jsonschema:"what the human is asked, any JSON"`
}

// WorkflowResumeArgs are the arguments of workflow_resume.
type WorkflowResumeArgs struct {
	WorkflowID string          `json:"workflow_id" jsonschema:"the interrupted workflow"`
	Response   json.RawMessage `json:"response" jsonschema:"the human's answer, any JSON, e.g. \"Approve\""`
}

// WorkflowCompleteArgs are the arguments of workflow_complete.
type WorkflowCompleteArgs struct {
	WorkflowID string          `json:"workflow_id" jsonschema:"the workflow"`
	Output     json.RawMessage `json:"output,omitempty" jsonschema:"the result, any JSON"`
}

// WorkflowFailArgs are the arguments of workflow_fail.
type WorkflowFailArgs struct {
	WorkflowID string `json:"workflow_id" jsonschema:"the workflow"`
	Error      string `json:"error" jsonschema:"what went wrong"`
}

// WorkflowListArgs are the arguments of workflow_list.
type WorkflowListArgs struct {
	Status string `json:"status,omitempty" jsonschema:"pending, running, interrupted (the inbox of workflows waiting for a human), completed, failed or cancelled"`
	Name   string `json:"name,omitempty" jsonschema:"only workflows of this name"`
	Limit  int    `json:"limit,omitempty" jsonschema:"how many (default 50, at most 1000)"`
	Cursor string `json:"cursor,omitempty" jsonschema:"next_cursor of the previous page"`
}

// WorkflowListResult is a page of workflows.
type WorkflowListResult struct {
	Workflows  []checkpoint.Workflow `json:"workflows"`
	NextCursor string                `json:"next_cursor,omitempty"`
}

// WorkflowHistoryArgs are the arguments of workflow_history.
type WorkflowHistoryArgs struct {
	WorkflowID   string `json:"workflow_id" jsonschema:"the workflow"`
	AfterVersion int64  `json:"after_version,omitempty" jsonschema:"only events after this version (the next page)"`
	Limit        int    `json:"limit,omitempty" jsonschema:"how many (default 100, at most 1000)"`
}

// WorkflowHistoryResult is a workflow's events, oldest first.
type WorkflowHistoryResult struct {
	Events []eventstore.Event `json:"events"`
}

// WorkflowForkArgs are the arguments of workflow_fork.
type WorkflowForkArgs struct {
	WorkflowID   string `json:"workflow_id" jsonschema:"the workflow to fork"`
	CheckpointID string `json:"checkpoint_id" jsonschema:"the checkpoint to start from"`
	Name         string `json:"name,omitempty" jsonschema:"the new workflow's name; default the original's"`
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
			return zero, &sqlexec.InputError{Msg: fmt.Sprintf("cairn runs read-only (--read-only / CAIRN_READ_ONLY): %s writes, so it is refused", name)}
		}
	}
	tool.InputSchema = mustSchema[In]()
	tool.OutputSchema = mustSchema[Out]()
	sdk.AddTool(s.srv, tool, typed(s, tool.Name, h))
}

// readAnnotations and writeAnnotations are the hints of the domain tools: a read, or an
// additive write; a destructive tool sets its own.
func readAnnotations() *sdk.ToolAnnotations {
	return &sdk.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true, OpenWorldHint: ptr(false)}
}

func writeAnnotations() *sdk.ToolAnnotations {
	return &sdk.ToolAnnotations{DestructiveHint: ptr(false), OpenWorldHint: ptr(false)}
}

func (s *Server) addCheckpointTools() {
	cp := s.checkpoints
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "workflow_start", Title: "Start a workflow", Annotations: write,
		Description: `Start a workflow (a thread of an agent framework) in status running. Returns the workflow with its id and version.
Example: {"name": "deployment-approval", "input": {"service": "nginx", "environment": "production"}}`},
		func(ctx context.Context, in WorkflowStartArgs) (*checkpoint.Workflow, error) {
			return cp.Start(ctx, checkpoint.StartParams{ID: in.WorkflowID, Name: in.Name, Input: in.Input, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_save", Title: "Save a checkpoint", Annotations: write,
		Description: `Save the workflow's state after a step. Pass expected_version (the version you last saw) so that a second writer cannot overwrite you: the loser gets a conflict naming the current version. Pass idempotency_key to make retries safe.
Example: {"workflow_id": "…", "node_id": "research", "state": {"messages": […], "plan": "…"}, "expected_version": 3}
Returns {"checkpoint_id", "parent_id", "version", "duplicate", "created_at"}.`},
		func(ctx context.Context, in CheckpointSaveArgs) (checkpoint.SaveResult, error) {
			return cp.Save(ctx, checkpoint.SaveParams{WorkflowID: in.WorkflowID, CheckpointID: in.CheckpointID, NodeID: in.NodeID,
				Namespace: in.Namespace, State: in.State, ChannelVersions: in.ChannelVersions, Extra: in.Extra, WorkflowName: in.WorkflowName,
				ParentID: in.ParentID, ExpectedVersion: in.ExpectedVersion, PendingWrites: in.PendingWrites, Metadata: in.Metadata,
				IdempotencyKey: in.IdempotencyKey, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_load", Title: "Load a checkpoint", Annotations: ro,
		Description: `Load a workflow's newest checkpoint (or the one named by checkpoint_id: time travel) with its state and pending writes — what a framework needs to resume after a crash.
Example: {"workflow_id": "…"}`},
		func(ctx context.Context, in CheckpointLoadArgs) (*checkpoint.Checkpoint, error) {
			return cp.Load(ctx, in.WorkflowID, in.CheckpointID, in.Namespace)
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_list", Title: "List checkpoints", Annotations: ro,
		Description: `List checkpoints, greatest (newest) id first, with metadata and pending writes; state with include_state. Page with before (the last id of the previous page). Without workflow_id: every workflow whose id starts with workflow_prefix. Example: {"workflow_id": "…", "limit": 20}`},
		func(ctx context.Context, in CheckpointListArgs) (CheckpointListResult, error) {
			cps, err := cp.List(ctx, checkpoint.ListParams{WorkflowID: in.WorkflowID, WorkflowPrefix: in.WorkflowPrefix, Namespace: in.Namespace,
				Before: in.Before, Limit: in.Limit, Metadata: in.Metadata, IncludeState: in.IncludeState})
			return CheckpointListResult{Checkpoints: nonNil(cps)}, err
		})
	addTool(s, &sdk.Tool{Name: "checkpoint_put_writes", Title: "Add a task's writes to a checkpoint", Annotations: write,
		Description: `Add a task's pending writes to a saved checkpoint (LangGraph's putWrites): a (task_id, idx) keeps its first write; writes to __error__, __scheduled__, __interrupt__, __resume__ replace. An __interrupt__ write interrupts the workflow, a __resume__ write resumes it.
Example: {"workflow_id": "thread-1", "checkpoint_id": "…", "task_id": "t1", "writes": [{"channel": "messages", "value": ["hi"]}]}`},
		func(ctx context.Context, in CheckpointPutWritesArgs) (checkpoint.PutWritesResult, error) {
			ws := make([]checkpoint.PendingWrite, len(in.Writes))
			for i, w := range in.Writes {
				ws[i] = checkpoint.PendingWrite{Channel: w.Channel, Value: w.Value, Idx: w.Idx}
			}
			return cp.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: in.WorkflowID, CheckpointID: in.CheckpointID, Namespace: in.Namespace,
				TaskID: in.TaskID, TaskPath: in.TaskPath, Writes: ws, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "workflow_interrupt", Title: "Interrupt for a human decision", Annotations: write,
		Description: `Stop a running workflow until a human answers: it shows in workflow_list {"status": "interrupted"} (the inbox) with the reason and payload until workflow_resume.
Example: {"workflow_id": "…", "reason": "needs approval", "payload": {"question": "Deploy nginx to production?"}}`},
		func(ctx context.Context, in WorkflowInterruptArgs) (*checkpoint.Workflow, error) {
			return cp.Interrupt(ctx, in.WorkflowID, in.Reason, in.Payload, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_resume", Title: "Resume with a response", Annotations: write,
		Description: `Resume an interrupted workflow with the human's response: the response is recorded in the workflow's history and handed back with the interrupt it answers.
Example: {"workflow_id": "…", "response": "Approve"}`},
		func(ctx context.Context, in WorkflowResumeArgs) (*checkpoint.Resumed, error) {
			return cp.Resume(ctx, in.WorkflowID, in.Response, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_complete", Title: "Complete a workflow", Annotations: write,
		Description: `Mark a workflow completed with its output. Example: {"workflow_id": "…", "output": {"deployed": true}}`},
		func(ctx context.Context, in WorkflowCompleteArgs) (*checkpoint.Workflow, error) {
			return cp.Complete(ctx, in.WorkflowID, in.Output, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_fail", Title: "Fail a workflow", Annotations: write,
		Description: `Mark a workflow failed with what went wrong. Example: {"workflow_id": "…", "error": "deploy timed out"}`},
		func(ctx context.Context, in WorkflowFailArgs) (*checkpoint.Workflow, error) {
			return cp.Fail(ctx, in.WorkflowID, in.Error, "mcp")
		})
	addTool(s, &sdk.Tool{Name: "workflow_get", Title: "Get a workflow", Annotations: ro,
		Description: `Get a workflow: status, input, output or error, the interrupt it waits on, head checkpoint and version. Example: {"workflow_id": "…"}`},
		func(ctx context.Context, in WorkflowIDArgs) (*checkpoint.Workflow, error) {
			return cp.Get(ctx, in.WorkflowID)
		})
	addTool(s, &sdk.Tool{Name: "workflow_list", Title: "List workflows", Annotations: ro,
		Description: `List workflows, most recently updated first, by status and name; {"status": "interrupted"} is the inbox of workflows waiting for a human. Page with next_cursor.
Example: {"status": "running", "limit": 20}`},
		func(ctx context.Context, in WorkflowListArgs) (WorkflowListResult, error) {
			ws, next, err := cp.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: in.Status, Name: in.Name, Limit: in.Limit, Cursor: in.Cursor})
			return WorkflowListResult{Workflows: nonNil(ws), NextCursor: next}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_history", Title: "Workflow history", Annotations: ro,
		Description: `The workflow's events, oldest first: started, each checkpoint saved, interrupts, responses, completion. Page with after_version.
Example: {"workflow_id": "…"}`},
		func(ctx context.Context, in WorkflowHistoryArgs) (WorkflowHistoryResult, error) {
			evs, err := cp.History(ctx, in.WorkflowID, in.AfterVersion, in.Limit)
			return WorkflowHistoryResult{Events: nonNil(evs)}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_fork", Title: "Fork from a checkpoint", Annotations: write,
		Description: `Start a new workflow from an earlier checkpoint of another (time travel: try a different path from there); the original is untouched.
Example: {"workflow_id": "…", "checkpoint_id": "…", "name": "research-retry"}`},
		func(ctx context.Context, in WorkflowForkArgs) (WorkflowForkResult, error) {
			w, res, err := cp.Fork(ctx, in.WorkflowID, in.CheckpointID, in.Name, "mcp")
			return WorkflowForkResult{Workflow: w, Checkpoint: res}, err
		})
	addTool(s, &sdk.Tool{Name: "workflow_delete", Title: "Delete a workflow",
		Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(true), IdempotentHint: false, OpenWorldHint: ptr(false)},
		Description: `Delete a workflow with its checkpoints and steps. Its event history stays (ending with WorkflowDeleted). Example: {"workflow_id": "…"}`},
		func(ctx context.Context, in WorkflowIDArgs) (WorkflowDeleteResult, error) {
			if err := cp.Delete(ctx, in.WorkflowID, "mcp"); err != nil {
				return WorkflowDeleteResult{}, err
			}
			return WorkflowDeleteResult{WorkflowID: in.WorkflowID, Deleted: true}, nil
		})
}
