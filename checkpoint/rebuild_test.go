package checkpoint_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// snapshot renders every projection table as JSON, in a stable order.
func snapshot(t *testing.T, db *testdb.DB) string {
	t.Helper()
	var b strings.Builder
	for _, table := range []string{"workflows", "workflow_checkpoints", "workflow_steps", "checkpoint_writes"} {
		var s string
		err := db.Pool.QueryRow(context.Background(),
			`SELECT coalesce(jsonb_agg(to_jsonb(t) ORDER BY to_jsonb(t)::text), '[]')::text FROM `+table+` t`).Scan(&s)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s: %s\n", table, s)
	}
	return b.String()
}

// TestRebuildEqualsLive: after every kind of change — through the API and through raw SQL —
// projections rebuilt from the events equal the live ones, row for row.
func TestRebuildEqualsLive(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := db.Pool.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	a, _ := s.Start(ctx, checkpoint.StartParams{ID: "a", Name: "alpha", Input: raw(`{"x": 1}`), Metadata: raw(`{"team": "ops"}`)})
	for i := 1; i <= 4; i++ {
		ns := ""
		if i == 3 {
			ns = "sub"
		}
		if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: a.ID, NodeID: fmt.Sprint("n", i), Namespace: ns,
			State:         raw(fmt.Sprintf(`{"i": %d, "log": [%s]}`, i, msgs(i))),
			PendingWrites: []checkpoint.PendingWrite{{TaskID: "t", Channel: "i", Value: raw(fmt.Sprint(i))}}}); err != nil {
			t.Fatal(err)
		}
	}
	s.Interrupt(ctx, a.ID, "ask", raw(`{"q": 1}`), "")
	s.Resume(ctx, a.ID, raw(`"yes"`), "")
	s.Complete(ctx, a.ID, raw(`{"ok": true}`), "")

	b, _ := s.Start(ctx, checkpoint.StartParams{ID: "b", Name: "beta"})
	s.Save(ctx, checkpoint.SaveParams{WorkflowID: b.ID, NodeID: "n1", State: raw(`[1, 2]`)})
	s.Fail(ctx, b.ID, "boom", "")
	cps, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: a.ID})
	s.Fork(ctx, a.ID, cps[len(cps)-1].ID, "alpha-fork", "")
	c, _ := s.Start(ctx, checkpoint.StartParams{ID: "c"})
	s.Save(ctx, checkpoint.SaveParams{WorkflowID: c.ID, State: raw(`{}`)})
	s.Delete(ctx, c.ID, "")

	// A framework's thread: its own ids, versioned channels, writes added later, an interrupt
	// and its resume.
	long := `[` + strings.Repeat(`{"m": "hello"},`, 20) + `{"m": "bye"}]`
	for i, st := range []string{`{"messages": ` + long + `, "n": 1}`, `{"n": 2}`} {
		id := fmt.Sprint("lg-", i)
		if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: "lg", CheckpointID: id, State: raw(st),
			ChannelVersions: raw(fmt.Sprintf(`{"messages": 1, "n": %d}`, i+1)), Extra: raw(`{"v": 4}`), Metadata: raw(`{"step": 1}`)}); err != nil {
			t.Fatal(err)
		}
		for _, ch := range []string{"n", "__interrupt__", "__resume__"} {
			if _, err := s.PutWrites(ctx, checkpoint.PutWritesParams{WorkflowID: "lg", CheckpointID: id, TaskID: "task", TaskPath: "p",
				Writes: []checkpoint.PendingWrite{{Channel: ch, Value: raw(`"x"`)}}}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The predecessor's raw SQL, and more.
	var raw1 string
	if err := db.Pool.QueryRow(ctx, "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "research-pipeline").Scan(&raw1); err != nil {
		t.Fatal(err)
	}
	exec("INSERT INTO workflows (name, status) VALUES ($1, $2)", "deployment-approval", "pending")
	exec("INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", raw1, "discover")
	exec("INSERT INTO workflow_checkpoints (workflow_id, node_id, state, created_at) VALUES ($1, $2, $3, NOW())", raw1, "discover", `{"found": 3}`)
	exec("UPDATE workflows SET status = $1 WHERE id = $2", "running", raw1)
	exec("UPDATE workflow_steps SET status = 'failed' WHERE workflow_id = $1", raw1)
	s.Save(ctx, checkpoint.SaveParams{WorkflowID: raw1, NodeID: "analyze", State: raw(`{"found": 3, "more": true}`)})
	exec("DELETE FROM workflow_steps WHERE step_name = 'n2'")
	exec("DELETE FROM workflows WHERE name = 'deployment-approval'")

	live := snapshot(t, db)
	n, err := s.Rebuild(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("rebuild applied no events")
	}
	rebuilt := snapshot(t, db)
	if live != rebuilt {
		t.Errorf("rebuilt projections differ from the live ones\nlive:    %s\nrebuilt: %s", live, rebuilt)
	}
	// And cairn keeps working on the rebuilt projections.
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: raw1, NodeID: "after", State: raw(`{"after": 1}`)}); err != nil {
		t.Fatal(err)
	}
	exec("INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, 'after-rebuild')", raw1)
}

// TestRawSQLAppearsInHistory: writes to the projections by raw SQL are events on the
// workflow's stream, and the workflow's version follows them.
func TestRawSQLAppearsInHistory(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	var id string
	if err := db.Pool.QueryRow(ctx, "INSERT INTO workflows (name) VALUES ($1) RETURNING id", "research-pipeline").Scan(&id); err != nil {
		t.Fatal(err)
	}
	db.Pool.Exec(ctx, "INSERT INTO workflow_steps (workflow_id, step_name) VALUES ($1, $2)", id, "discover")
	db.Pool.Exec(ctx, "INSERT INTO workflow_checkpoints (workflow_id, node_id, state, created_at) VALUES ($1, $2, $3, NOW())", id, "discover", `{"a": 1}`)
	db.Pool.Exec(ctx, "UPDATE workflows SET status = 'running' WHERE id = $1", id)
	evs, err := s.History(ctx, id, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		var d struct{ Op, Table string }
		if err := jsonUnmarshal(e.Data, &d); err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Type+" "+d.Op+" "+d.Table)
	}
	want := "RawRowWritten INSERT workflows|RawRowWritten INSERT workflow_steps|RawRowWritten INSERT workflow_checkpoints|RawRowWritten UPDATE workflows"
	if strings.Join(got, "|") != want {
		t.Errorf("history = %v", got)
	}
	w, _ := s.Get(ctx, id)
	if w.Version != 4 || w.HeadCheckpointID == "" {
		t.Errorf("workflow after raw writes: version %d, head %q", w.Version, w.HeadCheckpointID)
	}
	// An API save with the version it read still works after raw writes.
	v := w.Version
	if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: id, State: raw(`{"a": 2}`), ExpectedVersion: &v}); err != nil {
		t.Fatal(err)
	}
}
