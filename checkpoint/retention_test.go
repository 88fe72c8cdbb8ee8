package checkpoint_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/checkpoint"
)

func TestRetentionKeepsHeadsAndInterrupted(t *testing.T) {
	t.Parallel()
	s, db := newStore(t)
	ctx := context.Background()
	count := func(id string) int {
		var n int
		db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1`, id).Scan(&n)
		return n
	}
	busy, _ := s.Start(ctx, checkpoint.StartParams{ID: "busy"})
	waiting, _ := s.Start(ctx, checkpoint.StartParams{ID: "waiting"})
	for i := 1; i <= 10; i++ {
		state := raw(fmt.Sprintf(`{"i": %d, "log": [%s]}`, i, msgs(i)))
		s.Save(ctx, checkpoint.SaveParams{WorkflowID: busy.ID, NodeID: "n", State: state})
		s.Save(ctx, checkpoint.SaveParams{WorkflowID: waiting.ID, NodeID: "n", State: state})
	}
	s.Save(ctx, checkpoint.SaveParams{WorkflowID: busy.ID, Namespace: "sub", State: raw(`{"only": 1}`)})
	s.Interrupt(ctx, waiting.ID, "approve?", nil, "")

	n, err := s.Prune(ctx, checkpoint.Retention{KeepLast: 3})
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 || count(busy.ID) != 4 || count(waiting.ID) != 10 {
		t.Fatalf("pruned %d; busy has %d (want 3 + the sub head), waiting %d (want all 10)", n, count(busy.ID), count(waiting.ID))
	}
	// The kept checkpoints still load, including the oldest kept one, whose blobs survived.
	cps, _ := s.List(ctx, checkpoint.ListParams{WorkflowID: busy.ID, Limit: 10})
	for _, cp := range cps {
		got, err := s.Load(ctx, busy.ID, cp.ID, "")
		if err != nil || len(got.State) == 0 {
			t.Fatalf("load %s after prune: %v", cp.ID, err)
		}
	}
	oldest, _ := s.Load(ctx, busy.ID, cps[len(cps)-1].ID, "")
	jsonEq(t, oldest.State, fmt.Sprintf(`{"i": 8, "log": [%s]}`, msgs(8)))

	// Blobs only pruned checkpoints used are gone: busy keeps values of i 8..10 and the sub state.
	var blobs int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM checkpoint_blobs WHERE workflow_id = $1`, busy.ID).Scan(&blobs)
	if blobs != 3+10+1 { // i = 8, 9, 10; messages 1..10 (all still in the kept logs); {"only": 1} is one value
		t.Errorf("busy has %d blobs", blobs)
	}

	// A rebuild does not bring the pruned checkpoints back.
	live := snapshot(t, db)
	if _, err := s.Rebuild(ctx); err != nil {
		t.Fatal(err)
	}
	if rebuilt := snapshot(t, db); rebuilt != live {
		t.Errorf("rebuild after prune differs\nlive:    %s\nrebuilt: %s", live, rebuilt)
	}

	// Max age: everything but the heads is made old enough (out of band, so no more rebuild
	// comparisons after this).
	if _, err := db.Pool.Exec(ctx, `SELECT set_config('cairn.maintenance', 'on', false);
		UPDATE workflow_checkpoints SET created_at = created_at - interval '2 days';
		SELECT set_config('cairn.maintenance', 'off', false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Prune(ctx, checkpoint.Retention{MaxAge: 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if count(busy.ID) != 2 || count(waiting.ID) != 10 {
		t.Fatalf("after max age: busy %d (want the two namespace heads), waiting %d", count(busy.ID), count(waiting.ID))
	}
	head, err := s.Load(ctx, busy.ID, "", "")
	if err != nil {
		t.Fatal(err)
	}
	jsonEq(t, head.State, fmt.Sprintf(`{"i": 10, "log": [%s]}`, msgs(10)))

	if n, _ := s.Prune(ctx, checkpoint.Retention{}); n != 0 {
		t.Errorf("the zero retention pruned %d", n)
	}
}
