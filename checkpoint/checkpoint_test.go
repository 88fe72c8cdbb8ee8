package checkpoint_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

func newStore(t *testing.T) (*checkpoint.Store, *testdb.DB) {
	t.Helper()
	db := testdb.New(t)
	return checkpoint.New(db.Pool), db
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func jsonEq(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var a, b any
	if err := json.Unmarshal(got, &a); err != nil {
		t.Fatalf("got invalid JSON %s", got)
	}
	json.Unmarshal([]byte(want), &b)
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	if string(ja) != string(jb) {
		t.Errorf("got %s, want %s", ja, jb)
	}
}

func TestLifecycle(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()

	w, err := s.Start(ctx, checkpoint.StartParams{ID: "thread-1", Name: "deployment-approval", Input: raw(`{"service":"nginx","environment":"production"}`)})
	if err != nil {
		t.Fatal(err)
	}
	if w.Status != checkpoint.StatusRunning || w.Version != 1 {
		t.Fatalf("started = %+v", w)
	}
	if _, err := s.Start(ctx, checkpoint.StartParams{ID: "thread-1"}); err == nil {
		t.Fatal("starting an existing id should fail")
	}

	var last checkpoint.SaveResult
	for i := 1; i <= 5; i++ {
		v := w.Version + int64(i) - 1
		last, err = s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: fmt.Sprintf("step-%d", i),
			State: raw(fmt.Sprintf(`{"step": %d, "messages": [%s], "plan": "ship it"}`, i, msgs(i))), ExpectedVersion: &v})
		if err != nil {
			t.Fatalf("save %d: %v", i, err)
		}
	}
	cp, err := s.Load(ctx, w.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if cp.ID != last.CheckpointID || cp.NodeID != "step-5" {
		t.Fatalf("head = %+v", cp)
	}
	jsonEq(t, cp.State, fmt.Sprintf(`{"step": 5, "messages": [%s], "plan": "ship it"}`, msgs(5)))

	w, err = s.Interrupt(ctx, w.ID, "needs approval", raw(`{"question":"Deploy nginx to production?"}`), "agent")
	if err != nil || w.Status != checkpoint.StatusInterrupted || w.Interrupt == nil || w.Interrupt.Reason != "needs approval" {
		t.Fatalf("interrupt: %+v %v", w, err)
	}
	inbox, _, err := s.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: checkpoint.StatusInterrupted})
	if err != nil || len(inbox) != 1 || inbox[0].ID != w.ID {
		t.Fatalf("inbox = %+v %v", inbox, err)
	}
	if _, err := s.Interrupt(ctx, w.ID, "again", nil, ""); err == nil {
		t.Error("interrupting an interrupted workflow should fail")
	}
	res, err := s.Resume(ctx, w.ID, raw(`"Approve"`), "human")
	if err != nil || res.Workflow.Status != checkpoint.StatusRunning || string(res.Response) != `"Approve"` || res.Interrupt == nil {
		t.Fatalf("resume: %+v %v", res, err)
	}
	jsonEq(t, res.Interrupt.Payload, `{"question":"Deploy nginx to production?"}`)
	if _, err := s.Resume(ctx, w.ID, raw(`"again"`), ""); err == nil {
		t.Error("resuming a running workflow should fail")
	}
	w, err = s.Complete(ctx, w.ID, raw(`{"deployed": true}`), "agent")
	if err != nil || w.Status != checkpoint.StatusCompleted {
		t.Fatalf("complete: %+v %v", w, err)
	}
	jsonEq(t, w.Output, `{"deployed": true}`)
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`{}`)}); err == nil {
		t.Error("a completed workflow should take no more checkpoints")
	}

	evs, err := s.History(ctx, w.ID, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	want := "[WorkflowStarted CheckpointSaved CheckpointSaved CheckpointSaved CheckpointSaved CheckpointSaved WorkflowInterrupted WorkflowResumed WorkflowCompleted]"
	if fmt.Sprint(types) != want {
		t.Errorf("history = %v", types)
	}
	if evs[len(evs)-1].Version != w.Version {
		t.Errorf("workflow version %d, stream at %d", w.Version, evs[len(evs)-1].Version)
	}
}

func msgs(n int) string {
	s := ""
	for i := 1; i <= n; i++ {
		if i > 1 {
			s += ","
		}
		s += fmt.Sprintf(`{"role":"assistant","content":"message %d"}`, i)
	}
	return s
}

func TestLoadListAndTimeTravel(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{Name: "research"})
	var ids []string
	for i := 1; i <= 6; i++ {
		ns := ""
		if i%3 == 0 {
			ns = "sub"
		}
		r, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: fmt.Sprint("n", i), Namespace: ns,
			State: raw(fmt.Sprintf(`{"i": %d}`, i)), Metadata: raw(fmt.Sprintf(`{"source": "loop", "even": %t}`, i%2 == 0))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.CheckpointID)
	}
	// Any earlier checkpoint loads with its own state.
	cp, err := s.Load(ctx, w.ID, ids[1], "")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, cp.State, `{"i": 2}`)
	if cp.ParentID != ids[0] {
		t.Errorf("parent of 2nd = %q, want %q", cp.ParentID, ids[0])
	}
	// The head of a namespace.
	sub, err := s.Load(ctx, w.ID, "", "sub")
	if err != nil || sub.ID != ids[5] {
		t.Fatalf("sub head = %+v %v", sub, err)
	}

	all, err := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID})
	if err != nil || len(all) != 6 || all[0].ID != ids[5] || all[0].State != nil {
		t.Fatalf("list = %d entries, first %+v, %v", len(all), all, err)
	}
	top := ""
	page1, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID, Namespace: &top, Limit: 2})
	page2, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID, Namespace: &top, Limit: 2, Before: page1[1].ID})
	if len(page1) != 2 || len(page2) != 2 || page1[0].ID != ids[4] || page2[0].ID != ids[1] || page2[1].ID != ids[0] {
		t.Fatalf("pages: %v / %v", page1, page2)
	}
	even, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID, Metadata: raw(`{"even": true}`)})
	if len(even) != 3 {
		t.Errorf("metadata filter: %d", len(even))
	}

	// Fork from the 2nd checkpoint: a new workflow whose head is that state; the original is untouched.
	f, res, err := s.Fork(ctx, w.ID, ids[1], "research-retry", "")
	if err != nil {
		t.Fatal(err)
	}
	if f.ParentWorkflowID != w.ID || f.ForkedFrom != ids[1] || f.HeadCheckpointID != res.CheckpointID || f.Name != "research-retry" {
		t.Fatalf("fork = %+v", f)
	}
	head, _ := s.Load(ctx, f.ID, "", "")
	jsonEq(t, head.State, `{"i": 2}`)
	orig, _ := s.Load(ctx, w.ID, "", "")
	jsonEq(t, orig.State, `{"i": 5}`)

	var nf *checkpoint.NotFoundError
	if _, err := s.Load(ctx, w.ID, "nope", ""); !errors.As(err, &nf) {
		t.Errorf("missing checkpoint: %v", err)
	}
	if _, err := s.Load(ctx, "no-such-workflow", "", ""); !errors.As(err, &nf) || nf.What != "workflow" {
		t.Errorf("missing workflow: %v", err)
	}
}

// TestRacingSavers: writers race to save at the same version; exactly one wins each round and
// the losers get a conflict naming the new version. Nothing is lost or duplicated.
func TestRacingSavers(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	version := w.Version
	const writers, rounds = 6, 15
	for round := range rounds {
		var wg sync.WaitGroup
		var wins atomic.Int32
		start := make(chan struct{})
		for i := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				v := version
				_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: "n", State: raw(fmt.Sprintf(`{"round": %d, "writer": %d}`, round, i)), ExpectedVersion: &v})
				var ce *checkpoint.ConflictError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &ce):
					if ce.CurrentVersion != version+1 {
						t.Errorf("conflict names %d, want %d", ce.CurrentVersion, version+1)
					}
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
		version++
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1`, w.ID).Scan(&n)
	if n != rounds {
		t.Errorf("%d checkpoints, want %d", n, rounds)
	}
}

func TestIdempotentSaveAndPendingWrites(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	idx0 := 0
	p := checkpoint.SaveParams{WorkflowID: w.ID, NodeID: "a", State: raw(`{"x": 1}`), IdempotencyKey: "run-1-step-a",
		PendingWrites: []checkpoint.PendingWrite{{TaskID: "t1", Channel: "x", Value: raw(`2`)}, {TaskID: "t1", Idx: &idx0, Channel: "x", Value: raw(`3`)}}}
	first, err := s.Save(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Save(ctx, p)
	if err != nil || !again.Duplicate || again.CheckpointID != first.CheckpointID || again.Version != first.Version {
		t.Fatalf("retry = %+v, first = %+v, %v", again, first, err)
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1`, w.ID).Scan(&n)
	if n != 1 {
		t.Fatalf("%d checkpoints after a retried save", n)
	}
	cp, _ := s.Load(ctx, w.ID, "", "")
	// Two writes with the same (task, idx): the first wins.
	if len(cp.PendingWrites) != 1 || string(cp.PendingWrites[0].Value) != "2" {
		t.Fatalf("pending writes = %+v", cp.PendingWrites)
	}
	// Pending writes stay with their checkpoint: time travel to it finds them.
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: "b", State: raw(`{"x": 2}`)}); err != nil {
		t.Fatal(err)
	}
	old, err := s.Load(ctx, w.ID, first.CheckpointID, "")
	if err != nil || len(old.PendingWrites) != 1 {
		t.Errorf("pending writes of the earlier checkpoint = %+v, %v", old, err)
	}
	head, _ := s.Load(ctx, w.ID, "", "")
	if len(head.PendingWrites) != 0 {
		t.Errorf("the new checkpoint has pending writes %+v", head.PendingWrites)
	}
}

// TestStorageGrowsWithChanges: unchanged channel values and array elements are stored once.
func TestStorageGrowsWithChanges(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	big := fmt.Sprintf(`"%0500d"`, 7)
	for i := 1; i <= 20; i++ {
		state := fmt.Sprintf(`{"docs": %s, "messages": [%s], "step": %d}`, big, msgs(i), i)
		if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(state)}); err != nil {
			t.Fatal(err)
		}
	}
	var blobs int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_blobs WHERE workflow_id = $1`, w.ID).Scan(&blobs)
	// docs once, 20 distinct messages, 20 distinct step values, and the chunks of the lists of
	// 17 to 20 messages (more than 16 elements are stored in chunks of 16): the first 16, the
	// same for all four, and four different second chunks.
	if blobs != 46 {
		t.Errorf("%d blobs, want 46", blobs)
	}
	var full int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1 AND state IS NOT NULL`, w.ID).Scan(&full)
	if full != 0 {
		t.Errorf("%d checkpoints keep a full state copy, want none", full)
	}
	for _, i := range []int{1, 7, 20} {
		cps, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID, Limit: 1000})
		cp, err := s.Load(ctx, w.ID, cps[20-i].ID, "")
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, cp.State, fmt.Sprintf(`{"docs": %s, "messages": [%s], "step": %d}`, big, msgs(i), i))
	}
	// A state that is not an object round-trips too.
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`[1, "two", null]`)}); err != nil {
		t.Fatal(err)
	}
	cp, _ := s.Load(ctx, w.ID, "", "")
	jsonEq(t, cp.State, `[1, "two", null]`)
}

// TestSeedStatementsRunVerbatim: the predecessor's raw SQL on these tables works unchanged.
func TestSeedStatementsRunVerbatim(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	var id string
	if _, err := db.Pool.Exec(ctx, "INSERT INTO workflows (name, status) VALUES ($1, $2)", "deployment-approval", "pending"); err != nil {
		t.Fatal(err)
	}
	if err := db.Pool.QueryRow(ctx, "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "research-pipeline").Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", id, "discover"); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Pool.Exec(ctx, `
        INSERT INTO workflow_checkpoints (workflow_id, node_id, state, created_at)
        VALUES ($1, $2, $3, NOW())
        `, id, "discover", `{"found": 3}`); err != nil {
		t.Fatal(err)
	}
	var state string
	if err := db.Pool.QueryRow(ctx, `
        SELECT state FROM workflow_checkpoints
        WHERE workflow_id = $1
        ORDER BY created_at DESC
        LIMIT 1
        `, id).Scan(&state); err != nil || state != `{"found": 3}` {
		t.Fatalf("seed latest-state query: %q %v", state, err)
	}
	// The Go API reads what raw SQL wrote, and the seed's query reads what the Go API wrote.
	cp, err := s.Load(ctx, id, "", "")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, cp.State, `{"found": 3}`)
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: id, NodeID: "analyze", State: raw(`{"found": 3, "analyzed": true}`)}); err != nil {
		t.Fatal(err)
	}
	// cairn keeps no copy of a saved state in the state column (it would cost the whole state
	// per save): SQL reads it with cairn_checkpoint_state.
	if err := db.Pool.QueryRow(ctx, `SELECT cairn_checkpoint_state(c) FROM workflow_checkpoints c WHERE workflow_id = $1 ORDER BY created_at DESC LIMIT 1`, id).Scan(&state); err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	json.Unmarshal([]byte(state), &got)
	if got["analyzed"] != true {
		t.Errorf("seed query after an API save = %s", state)
	}
	for _, q := range []string{
		"SELECT * FROM workflows WHERE status = 'running'",
		"CREATE INDEX IF NOT EXISTS idx_workflows_status ON workflows(status)",
		"DELETE FROM workflows WHERE created_at < NOW() - INTERVAL '30 days'",
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Errorf("%s: %v", q, err)
		}
	}
}

func TestDeleteKeepsHistory(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: "a", State: raw(`{"a": 1}`)})
	if err := s.Delete(ctx, w.ID, "ops"); err != nil {
		t.Fatal(err)
	}
	var nf *checkpoint.NotFoundError
	if _, err := s.Get(ctx, w.ID); !errors.As(err, &nf) {
		t.Errorf("get after delete: %v", err)
	}
	if err := s.Delete(ctx, w.ID, ""); !errors.As(err, &nf) {
		t.Errorf("second delete: %v", err)
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_blobs WHERE workflow_id = $1`, w.ID).Scan(&n)
	if n != 0 {
		t.Errorf("%d blobs left", n)
	}
	evs, err := s.History(ctx, w.ID, 0, 10)
	if err != nil || len(evs) != 3 || evs[2].Type != checkpoint.EventDeleted {
		t.Fatalf("history after delete: %v %v", evs, err)
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	neg := int64(-3)
	long := string(make([]byte, 300))
	for i, err := range []error{
		func() error { _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID}); return err }(),
		func() error {
			_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`{bad`)})
			return err
		}(),
		func() error {
			_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`{}`), ExpectedVersion: &neg})
			return err
		}(),
		func() error {
			_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "", State: raw(`{}`)})
			return err
		}(),
		func() error { _, err := s.Start(ctx, checkpoint.StartParams{ID: long}); return err }(),
		func() error { _, err := s.Start(ctx, checkpoint.StartParams{Metadata: raw(`[1]`)}); return err }(),
		func() error { _, err := s.Resume(ctx, w.ID, nil, ""); return err }(),
		func() error { _, err := s.Fail(ctx, w.ID, "", ""); return err }(),
		func() error {
			_, _, err := s.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: "sleeping"})
			return err
		}(),
		func() error {
			_, _, err := s.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Cursor: "!!"})
			return err
		}(),
		func() error {
			_, err := s.List(ctx, checkpoint.ListParams{WorkflowID: w.ID, WorkflowPrefix: "x"})
			return err
		}(),
		func() error {
			_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`{"a": 1}`), ChannelVersions: raw(`{"b": 1}`)})
			return err
		}(),
		func() error {
			_, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: raw(`{}`), ChannelVersions: raw(`{"b": [1]}`)})
			return err
		}(),
		func() error {
			_, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: w.ID, CheckpointID: "c",
				Writes: []checkpoint.PendingWrite{{Channel: "a", Value: raw(`1`)}}})
			return err
		}(),
		func() error {
			_, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: w.ID, CheckpointID: "c", TaskID: "t"})
			return err
		}(),
	} {
		var ie *callerr.Input
		var nf *checkpoint.NotFoundError
		if err == nil || (!errors.As(err, &ie) && !errors.As(err, &nf)) {
			t.Errorf("case %d: want an input or not-found error, got %v", i, err)
		}
	}
	// A workflow id not seen before is started by its first save.
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "ghost", WorkflowName: "haunting", State: raw(`{}`)}); err != nil {
		t.Errorf("save to a new workflow: %v", err)
	}
	if g, err := s.Get(ctx, "ghost"); err != nil || g.Name != "haunting" || g.Status != checkpoint.StatusRunning {
		t.Errorf("workflow started by a save = %+v, %v", g, err)
	}
}

func TestListWorkflowsPages(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for i := range 7 {
		s.Start(ctx, checkpoint.StartParams{ID: fmt.Sprint("w", i), Name: "batch"})
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; ; pages++ {
		ws, next, err := s.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Name: "batch", Limit: 3, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range ws {
			if seen[w.ID] {
				t.Errorf("%s on two pages", w.ID)
			}
			seen[w.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(seen) != 7 {
		t.Errorf("saw %d workflows", len(seen))
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// TestRestartDeletedID: a deleted workflow's id can be started again; its history continues.
func TestRestartDeletedID(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Start(ctx, checkpoint.StartParams{ID: "thread-7"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "thread-7", ""); err != nil {
		t.Fatal(err)
	}
	w, err := s.Start(ctx, checkpoint.StartParams{ID: "thread-7", Name: "again"})
	if err != nil {
		t.Fatal(err)
	}
	if w.Version != 3 {
		t.Errorf("version = %d, want 3 (started, deleted, started)", w.Version)
	}
	if _, err := s.Start(ctx, checkpoint.StartParams{ID: "thread-7"}); err == nil {
		t.Error("a running workflow's id must not start twice")
	}
}
