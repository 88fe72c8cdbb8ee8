package mcp_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

func num(v any) int64 {
	var n int64
	fmt.Sscan(fmt.Sprint(v), &n)
	return n
}

// TestWorkflowLifecycleOverMCP: start, save, interrupt, resume with a response, complete — and
// resume after the cairn process is killed and started again.
func TestWorkflowLifecycleOverMCP(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs, proc := stdioClientCmd(t, db.URL)

	w := ok(t, cs, "workflow_start", map[string]any{"name": "deployment-approval", "input": map[string]any{"service": "nginx", "environment": "production"}})
	id := w["id"].(string)
	if w["status"] != "running" || num(w["version"]) != 1 {
		t.Fatalf("start = %v", w)
	}
	version := num(w["version"])
	for i := 1; i <= 3; i++ {
		r := ok(t, cs, "checkpoint_save", map[string]any{"workflow_id": id, "node_id": fmt.Sprint("step-", i),
			"state": map[string]any{"step": i, "messages": []any{"hello", fmt.Sprint("message ", i)}}, "expected_version": version})
		version = num(r["version"])
	}

	// Kill the server (SIGKILL: no goodbye) and start another: the state is all in PostgreSQL.
	if err := proc.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cs = stdioClient(t, db)
	cp := ok(t, cs, "checkpoint_load", map[string]any{"workflow_id": id})
	if cp["node_id"] != "step-3" || fmt.Sprint(cp["state"].(map[string]any)["step"]) != "3" {
		t.Fatalf("load after restart = %v", cp)
	}

	ok(t, cs, "workflow_interrupt", map[string]any{"workflow_id": id, "reason": "needs approval", "payload": map[string]any{"question": "Deploy?"}})
	inbox := ok(t, cs, "workflow_list", map[string]any{"status": "interrupted"})
	if ws := inbox["workflows"].([]any); len(ws) != 1 || ws[0].(map[string]any)["id"] != id {
		t.Fatalf("inbox = %v", inbox)
	}
	res := ok(t, cs, "workflow_resume", map[string]any{"workflow_id": id, "response": "Approve"})
	if res["response"] != "Approve" || res["workflow"].(map[string]any)["status"] != "running" {
		t.Fatalf("resume = %v", res)
	}
	done := ok(t, cs, "workflow_complete", map[string]any{"workflow_id": id, "output": map[string]any{"deployed": true}})
	if done["status"] != "completed" {
		t.Fatalf("complete = %v", done)
	}
	hist := ok(t, cs, "workflow_history", map[string]any{"workflow_id": id})
	var types []string
	for _, e := range hist["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if strings.Join(types, ",") != "WorkflowStarted,CheckpointSaved,CheckpointSaved,CheckpointSaved,WorkflowInterrupted,WorkflowResumed,WorkflowCompleted" {
		t.Errorf("history = %v", types)
	}
	// The resume's response is in the history.
	if !strings.Contains(fmt.Sprint(hist["events"]), "Approve") {
		t.Error("the response is not recorded in the history")
	}
}

func TestCheckpointToolsConcurrencyForkAndErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	w := ok(t, cs, "workflow_start", map[string]any{"name": "race", "workflow_id": "thread-42"})
	if w["id"] != "thread-42" {
		t.Fatalf("own id not kept: %v", w)
	}
	version := num(w["version"])

	// Racing savers through MCP: exactly one wins each round.
	for round := range 5 {
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, conflicts := 0, 0
		for i := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := call(t, cs, "checkpoint_save", map[string]any{"workflow_id": "thread-42", "node_id": "n",
					"state": map[string]any{"round": round, "writer": i}, "expected_version": version})
				mu.Lock()
				defer mu.Unlock()
				if r.IsError {
					if strings.Contains(r.Text, "conflict") && strings.Contains(r.Text, fmt.Sprint(version+1)) {
						conflicts++
					} else {
						t.Errorf("unexpected error: %s", r.Text)
					}
					return
				}
				wins++
			}()
		}
		wg.Wait()
		if wins != 1 || conflicts != 3 {
			t.Fatalf("round %d: %d wins, %d conflicts", round, wins, conflicts)
		}
		version++
	}

	// An idempotent retry returns the first checkpoint.
	args := map[string]any{"workflow_id": "thread-42", "node_id": "x", "state": map[string]any{"k": 1}, "idempotency_key": "retry-me"}
	first := ok(t, cs, "checkpoint_save", args)
	again := ok(t, cs, "checkpoint_save", args)
	if again["checkpoint_id"] != first["checkpoint_id"] || again["duplicate"] != true {
		t.Fatalf("retry = %v, first = %v", again, first)
	}

	list := ok(t, cs, "checkpoint_list", map[string]any{"workflow_id": "thread-42", "limit": 3})
	cps := list["checkpoints"].([]any)
	if len(cps) != 3 || cps[0].(map[string]any)["checkpoint_id"] != first["checkpoint_id"] {
		t.Fatalf("list = %v", list)
	}
	if _, has := cps[0].(map[string]any)["state"]; has {
		t.Error("checkpoint_list should not carry state bodies")
	}
	older := cps[2].(map[string]any)["checkpoint_id"]
	fork := ok(t, cs, "workflow_fork", map[string]any{"workflow_id": "thread-42", "checkpoint_id": older, "name": "retry"})
	fw := fork["workflow"].(map[string]any)
	if fw["forked_from"] != older || fw["parent_workflow_id"] != "thread-42" {
		t.Fatalf("fork = %v", fork)
	}
	loaded := ok(t, cs, "checkpoint_load", map[string]any{"workflow_id": fw["id"]})
	orig := ok(t, cs, "checkpoint_load", map[string]any{"workflow_id": "thread-42", "checkpoint_id": older})
	if fmt.Sprint(loaded["state"]) != fmt.Sprint(orig["state"]) {
		t.Errorf("fork state %v, original %v", loaded["state"], orig["state"])
	}

	for _, tc := range []struct {
		tool  string
		args  map[string]any
		wants []string
	}{
		{"checkpoint_save", map[string]any{"workflow_id": "thread-42", "node_id": "n"}, []string{"state"}},
		{"checkpoint_save", map[string]any{"workflow_id": "thread-42", "state": map[string]any{"a": 1}, "channel_versions": map[string]any{"b": 1}}, []string{"channel_versions", `"a"`}},
		{"checkpoint_put_writes", map[string]any{"workflow_id": "thread-42", "checkpoint_id": "c", "task_id": "",
			"writes": []any{map[string]any{"channel": "a", "value": 1}}}, []string{"task_id"}},
		{"checkpoint_put_writes", map[string]any{"workflow_id": "thread-42", "checkpoint_id": "missing", "task_id": "t", "writes": []any{}}, []string{"writes"}},
		{"checkpoint_save", map[string]any{"workflow_id": "thread-42", "node_id": "n", "state": 1, "expected_version": 1}, []string{"conflict"}},
		{"checkpoint_load", map[string]any{"workflow_id": "thread-42", "checkpoint_id": "missing"}, []string{"missing"}},
		{"workflow_start", map[string]any{"name": "dup", "workflow_id": "thread-42"}, []string{"exists"}},
		{"workflow_resume", map[string]any{"workflow_id": "thread-42", "response": "ok"}, []string{"not interrupted"}},
		{"workflow_list", map[string]any{"status": "sleeping"}, []string{"status"}},
		{"workflow_fail", map[string]any{"workflow_id": "thread-42"}, []string{"error"}},
		{"workflow_get", map[string]any{"workflow_id": "ghost"}, []string{"ghost"}},
		{"workflow_delete", map[string]any{"workflow_id": "ghost"}, []string{"ghost"}},
	} {
		fails(t, cs, tc.tool, tc.args, tc.wants...)
	}
	ok(t, cs, "workflow_delete", map[string]any{"workflow_id": fw["id"]})
	fails(t, cs, "workflow_get", map[string]any{"workflow_id": fw["id"]}, "does not exist")
}

// TestCheckpointToolsForFrameworks: what a LangGraph checkpointer does through the tools — its
// own ids, versioned channels, writes added to a checkpoint, a listing across its threads with
// state — and what a user then sees (the interrupt in workflow_list).
func TestCheckpointToolsForFrameworks(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	save := map[string]any{"workflow_id": "lg:thread-1", "checkpoint_id": "1ef-1", "namespace": "",
		"state": map[string]any{"messages": []any{"hi"}}, "channel_versions": map[string]any{"messages": 1, "step": 1},
		"extra": map[string]any{"v": 4, "ts": "2026-01-01T00:00:00Z"}, "metadata": map[string]any{"source": "input", "step": -1}}
	first := ok(t, cs, "checkpoint_save", save)
	again := ok(t, cs, "checkpoint_save", save)
	if again["duplicate"] != true || again["version"] != first["version"] {
		t.Errorf("the same save again = %v, first %v", again, first)
	}
	save["state"] = map[string]any{"messages": []any{"bye"}}
	fails(t, cs, "checkpoint_save", save, "1ef-1", "other content")
	w := ok(t, cs, "checkpoint_put_writes", map[string]any{"workflow_id": "lg:thread-1", "checkpoint_id": "1ef-1", "task_id": "t1",
		"writes": []any{map[string]any{"channel": "__interrupt__", "value": []any{map[string]any{"value": "approve?"}}}}})
	if w["status"] != "interrupted" || fmt.Sprint(w["written"]) != "1" {
		t.Errorf("put_writes = %v", w)
	}
	inbox := ok(t, cs, "workflow_list", map[string]any{"status": "interrupted"})
	if ws := inbox["workflows"].([]any); len(ws) != 1 || ws[0].(map[string]any)["id"] != "lg:thread-1" {
		t.Errorf("inbox = %v", inbox)
	}
	list := ok(t, cs, "checkpoint_list", map[string]any{"workflow_prefix": "lg:", "include_state": true})
	cps := list["checkpoints"].([]any)
	if len(cps) != 1 {
		t.Fatalf("list = %v", list)
	}
	cp := cps[0].(map[string]any)
	if fmt.Sprint(cp["state"], cp["channel_versions"], cp["extra"], cp["metadata"]) != "map[messages:[hi]] map[messages:1 step:1] map[ts:2026-01-01T00:00:00Z v:4] map[source:input step:-1]" {
		t.Errorf("listed checkpoint = %v", cp)
	}
	if pw := cp["pending_writes"].([]any); len(pw) != 1 || fmt.Sprint(pw[0].(map[string]any)["idx"]) != "-3" {
		t.Errorf("pending writes = %v", cp["pending_writes"])
	}
}

func TestCheckpointWritesRefusedReadOnly(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--read-only")
	fails(t, cs, "workflow_start", map[string]any{"name": "x"}, "read-only")
	ok(t, cs, "workflow_list", map[string]any{})
}

// TestSeedRawSQLAppearsInWorkflowHistory: the predecessor's statements through execute and
// transaction, verbatim, are recorded on the workflow's stream.
func TestSeedRawSQLAppearsInWorkflowHistory(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO workflows (name, status) VALUES ($1, $2)", "params": []any{"deployment-approval", "pending"}})
	tx := ok(t, cs, "transaction", map[string]any{"statements": []any{
		map[string]any{"sql": "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "params": []any{"research-pipeline"}},
		map[string]any{"sql": "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", "params": []any{"{workflow_id}", "discover"}},
	}})
	id := rows(t, tx["results"].([]any)[0].(map[string]any))[0]["id"].(string)
	ok(t, cs, "execute", map[string]any{"sql": `
        INSERT INTO workflow_checkpoints (workflow_id, node_id, state, created_at)
        VALUES ($1, $2, $3, NOW())
        `, "params": []any{id, "discover", `{"found": 3}`}})
	state := ok(t, cs, "query", map[string]any{"sql": `
        SELECT state FROM workflow_checkpoints
        WHERE workflow_id = $1
        ORDER BY created_at DESC
        LIMIT 1
        `, "params": []any{id}})
	if fmt.Sprint(rows(t, state)[0]["state"]) != "map[found:3]" {
		t.Fatalf("latest state = %v", state)
	}
	hist := ok(t, cs, "workflow_history", map[string]any{"workflow_id": id})
	var got []string
	for _, e := range hist["events"].([]any) {
		d := e.(map[string]any)["data"].(map[string]any)
		got = append(got, fmt.Sprint(d["op"], " ", d["table"]))
	}
	if strings.Join(got, ", ") != "INSERT workflows, INSERT workflow_steps, INSERT workflow_checkpoints" {
		t.Errorf("history of raw writes = %v", got)
	}
	// The framework API sees what raw SQL wrote.
	cp := ok(t, cs, "checkpoint_load", map[string]any{"workflow_id": id})
	if fmt.Sprint(cp["state"]) != "map[found:3]" {
		t.Errorf("checkpoint_load = %v", cp)
	}
}
