package checkpoint_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/callerr"
)

// TestCallerChosenIDs: a framework names its checkpoints; the same save again is a no-op, the
// same id with other content a conflict, and "newest" is the greatest id.
func TestCallerChosenIDs(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	p := checkpoint.SaveParams{WorkflowID: "thread-ids", CheckpointID: "1ef-b", State: raw(`{"x": 1}`), Metadata: raw(`{"step": 1}`)}
	first, err := s.Save(ctx, p)
	if err != nil || first.CheckpointID != "1ef-b" || first.ParentID != "" || first.Duplicate {
		t.Fatalf("first save = %+v, %v", first, err)
	}
	again, err := s.Save(ctx, p)
	if err != nil || !again.Duplicate || again.Version != first.Version || !again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("same save again = %+v, %v; first %+v", again, err, first)
	}
	other := p
	other.State = raw(`{"x": 2}`)
	var ce *checkpoint.CheckpointConflictError
	if _, err := s.Save(ctx, other); !errors.As(err, &ce) || !strings.Contains(err.Error(), "1ef-b") {
		t.Fatalf("same id, other content: %v", err)
	}
	// An id that sorts before the head does not become the head; parent_id may name any id.
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-ids", CheckpointID: "1ef-a", State: raw(`{"x": 0}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-ids", CheckpointID: "1ef-c", ParentID: "1ef-b", State: raw(`{"x": 3}`)}); err != nil {
		t.Fatal(err)
	}
	head, err := s.Load(ctx, "thread-ids", "", "")
	if err != nil || head.ID != "1ef-c" || head.ParentID != "1ef-b" {
		t.Fatalf("head = %+v, %v", head, err)
	}
	w, _ := s.Get(ctx, "thread-ids")
	if w.HeadCheckpointID != "1ef-c" {
		t.Errorf("head_checkpoint_id = %q", w.HeadCheckpointID)
	}
	// Ids cairn makes sort after the namespace's newest, even within one millisecond.
	for range 20 {
		res, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-made", State: raw(`{}`)})
		if err != nil {
			t.Fatal(err)
		}
		if head, _ := s.Load(ctx, "thread-made", "", ""); head.ID != res.CheckpointID {
			t.Fatalf("newest is %s, just saved %s", head.ID, res.CheckpointID)
		}
	}
}

// TestVersionedChannels: with channel versions a save sends only new values; a channel keeps
// the value saved under its version, and one whose version was never saved is left out.
func TestVersionedChannels(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for _, ns := range []string{"", "child"} {
		t.Run("ns="+ns, func(t *testing.T) {
			wf := "thread-v-" + ns
			save := func(id, state, versions string) {
				t.Helper()
				if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: wf, CheckpointID: id, Namespace: ns, State: raw(state),
					ChannelVersions: raw(versions), Extra: raw(`{"v": 4, "ts": "2026-01-01T00:00:00.000Z", "versions_seen": {"": {"a": 1}}}`)}); err != nil {
					t.Fatal(err)
				}
			}
			save("c1", `{"messages": ["hi"], "steps": 1}`, `{"messages": 1, "steps": 1}`)
			save("c2", `{"steps": 3}`, `{"messages": 1, "steps": 2}`)
			save("c3", `{}`, `{"messages": 1, "steps": 2, "never": 7}`)
			for id, want := range map[string]string{
				"c1": `{"messages": ["hi"], "steps": 1}`,
				"c2": `{"messages": ["hi"], "steps": 3}`,
				"c3": `{"messages": ["hi"], "steps": 3}`,
			} {
				cp, err := s.Load(ctx, wf, id, "")
				if err != nil {
					t.Fatal(err)
				}
				jsonEq(t, cp.State, want)
				if cp.Namespace != ns {
					t.Errorf("%s: namespace %q", id, cp.Namespace)
				}
			}
			cp, _ := s.Load(ctx, wf, "", ns)
			jsonEq(t, cp.ChannelVersions, `{"messages": 1, "steps": 2, "never": 7}`)
			jsonEq(t, cp.Extra, `{"v": 4, "ts": "2026-01-01T00:00:00.000Z", "versions_seen": {"": {"a": 1}}}`)
		})
	}
}

// TestLongArraysInChunks: a growing list is stored element by element in chunks and put back
// together at every depth; each step stores the new element, not the list.
func TestLongArraysInChunks(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	var list []string
	var ids []string
	for i := range 40 {
		list = append(list, fmt.Sprintf(`{"role": "user", "content": %q}`, strings.Repeat(fmt.Sprint(i), 100)))
		res, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-long", CheckpointID: fmt.Sprintf("c%03d", i),
			State: raw(`{"messages": [` + strings.Join(list, ",") + `]}`), ChannelVersions: raw(fmt.Sprintf(`{"messages": %d}`, i+1))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, res.CheckpointID)
	}
	for _, i := range []int{0, 15, 16, 17, 39} {
		cp, err := s.Load(ctx, "thread-long", ids[i], "")
		if err != nil {
			t.Fatal(err)
		}
		jsonEq(t, cp.State, `{"messages": [`+strings.Join(list[:i+1], ",")+`]}`)
	}
	var elements int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_blobs WHERE workflow_id = 'thread-long' AND value ? 'role'`).Scan(&elements)
	if elements != 40 {
		t.Errorf("%d message blobs, want each of the 40 messages once", elements)
	}
	cps, err := s.List(ctx, checkpoint.ListParams{WorkflowID: "thread-long", Limit: 3, IncludeState: true})
	if err != nil || len(cps) != 3 || cps[0].ID != "c039" {
		t.Fatalf("list = %+v, %v", cps, err)
	}
	jsonEq(t, cps[2].State, `{"messages": [`+strings.Join(list[:38], ",")+`]}`)
}

// TestListAcrossWorkflows: without workflow_id, the workflows of a prefix, ordered and paged by
// checkpoint id as strings, filtered by namespace and metadata.
func TestListAcrossWorkflows(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	for _, c := range []struct{ wf, id, ns, source string }{
		{"saver-1:a", "03", "", "input"}, {"saver-1:a", "05", "", "loop"}, {"saver-1:b", "04", "", "loop"},
		{"saver-1:b", "06", "child", "loop"}, {"saver-2:a", "07", "", "loop"},
	} {
		if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: c.wf, CheckpointID: c.id, Namespace: c.ns, State: raw(`{}`),
			Metadata: raw(fmt.Sprintf(`{"source": %q}`, c.source))}); err != nil {
			t.Fatal(err)
		}
	}
	ids := func(p checkpoint.ListParams) string {
		t.Helper()
		cps, err := s.List(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cps {
			out = append(out, c.WorkflowID+"/"+c.ID)
		}
		return strings.Join(out, " ")
	}
	root := ""
	for _, c := range []struct {
		p    checkpoint.ListParams
		want string
	}{
		{checkpoint.ListParams{WorkflowPrefix: "saver-1:"}, "saver-1:b/06 saver-1:a/05 saver-1:b/04 saver-1:a/03"},
		{checkpoint.ListParams{WorkflowPrefix: "saver-1:", Before: "05"}, "saver-1:b/04 saver-1:a/03"},
		{checkpoint.ListParams{WorkflowPrefix: "saver-1:", Namespace: &root, Limit: 2}, "saver-1:a/05 saver-1:b/04"},
		{checkpoint.ListParams{WorkflowPrefix: "saver-1:", Metadata: raw(`{"source": "input"}`)}, "saver-1:a/03"},
		{checkpoint.ListParams{WorkflowID: "saver-1:b"}, "saver-1:b/06 saver-1:b/04"},
		{checkpoint.ListParams{}, "saver-2:a/07 saver-1:b/06 saver-1:a/05 saver-1:b/04 saver-1:a/03"},
	} {
		if got := ids(c.p); got != c.want {
			t.Errorf("%+v: got %q, want %q", c.p, got, c.want)
		}
	}
}

// TestPutWrites: LangGraph's rules for a task's writes — the first write of a (task, idx) wins,
// the special channels replace — and __interrupt__ / __resume__ move the workflow's status.
func TestPutWrites(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-w", CheckpointID: "c1", State: raw(`{}`)}); err != nil {
		t.Fatal(err)
	}
	put := func(task string, ws ...checkpoint.PendingWrite) checkpoint.PutWritesResult {
		t.Helper()
		res, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: "thread-w", CheckpointID: "c1", TaskID: task, TaskPath: "~path", Writes: ws})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	w := func(ch, v string) checkpoint.PendingWrite { return checkpoint.PendingWrite{Channel: ch, Value: raw(v)} }
	for _, c := range []struct {
		name    string
		task    string
		writes  []checkpoint.PendingWrite
		written int
		status  string
	}{
		{"first writes", "t2", []checkpoint.PendingWrite{w("a", `1`), w("b", `2`)}, 2, "running"},
		{"the same (task, idx) again: the first wins", "t2", []checkpoint.PendingWrite{w("a", `9`)}, 0, "running"},
		{"another task", "t1", []checkpoint.PendingWrite{w("a", `3`)}, 1, "running"},
		{"an error", "t3", []checkpoint.PendingWrite{w("__error__", `"boom"`)}, 1, "running"},
		{"the error replaced", "t3", []checkpoint.PendingWrite{w("__error__", `"bang"`)}, 1, "running"},
		{"an interrupt", "t4", []checkpoint.PendingWrite{w("__interrupt__", `[{"value": "approve?", "id": "i1"}]`)}, 1, "interrupted"},
		{"the resume", "00000000-0000-0000-0000-000000000000", []checkpoint.PendingWrite{w("__resume__", `"yes"`)}, 1, "running"},
	} {
		res := put(c.task, c.writes...)
		if res.Written != c.written || res.Status != c.status {
			t.Errorf("%s: written %d, status %s; want %d, %s", c.name, res.Written, res.Status, c.written, c.status)
		}
	}
	cp, _ := s.Load(ctx, "thread-w", "c1", "")
	var got []string
	for _, pw := range cp.PendingWrites {
		got = append(got, fmt.Sprintf("%s/%d/%s=%s", pw.TaskID, *pw.Idx, pw.Channel, pw.Value))
	}
	want := `00000000-0000-0000-0000-000000000000/-4/__resume__="yes" t1/0/a=3 t2/0/a=1 t2/1/b=2 t3/-1/__error__="bang" t4/-3/__interrupt__=[{"id": "i1", "value": "approve?"}]`
	if strings.Join(got, " ") != want {
		t.Errorf("pending writes\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	if cp.PendingWrites[1].TaskPath != "~path" {
		t.Errorf("task_path = %q", cp.PendingWrites[1].TaskPath)
	}
	evs, _ := s.History(ctx, "thread-w", 0, 100)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	if !strings.Contains(strings.Join(types, " "), "PendingWritesPut WorkflowInterrupted PendingWritesPut WorkflowResumed") {
		t.Errorf("history = %v", types)
	}
	var ie *callerr.Input
	if _, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: "thread-w", CheckpointID: "c1", Namespace: "child", TaskID: "t",
		Writes: []checkpoint.PendingWrite{w("a", `1`)}}); !errors.As(err, &ie) {
		t.Errorf("writes to a checkpoint of another namespace: %v", err)
	}
}

// TestWritesBeforeTheirCheckpoint: LangGraph may write to a checkpoint whose save is still
// queued, even the first of a new thread; the writes wait there for it, and go with it.
func TestWritesBeforeTheirCheckpoint(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	if _, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: "thread-early", CheckpointID: "c1", TaskID: "t",
		Writes: []checkpoint.PendingWrite{{Channel: "a", Value: raw(`1`)}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "thread-early", CheckpointID: "c1", State: raw(`{}`)}); err != nil {
		t.Fatal(err)
	}
	cp, err := s.Load(ctx, "thread-early", "c1", "")
	if err != nil || len(cp.PendingWrites) != 1 {
		t.Fatalf("checkpoint = %+v, %v", cp, err)
	}
	if _, err := db.Pool.Exec(ctx, `DELETE FROM workflow_checkpoints WHERE workflow_id = 'thread-early'`); err != nil {
		t.Fatal(err)
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_writes WHERE workflow_id = 'thread-early'`).Scan(&n)
	if n != 0 {
		t.Errorf("%d writes outlived their checkpoint", n)
	}
}
