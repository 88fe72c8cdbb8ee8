package mcp_test

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestPruneAndRebuildCommands runs `cairn prune` and `cairn rebuild-projections` on a database
// with history.
func TestPruneAndRebuildCommands(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	s := checkpoint.New(db.Pool)
	w, _ := s.Start(ctx, checkpoint.StartParams{})
	for i := range 5 {
		if _, err := s.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, State: []byte(fmt.Sprintf(`{"i": %d}`, i))}); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, int) {
		cmd := exec.Command(cairnBin, args...)
		cmd.Env = cleanEnv()
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, isExit := err.(*exec.ExitError); isExit {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	if out, code := run("prune", "--database-url", db.URL); code != 2 || !strings.Contains(out, "--checkpoint-keep-last") {
		t.Errorf("prune without a policy: exit %d: %s", code, out)
	}
	if out, code := run("prune", "--database-url", db.URL, "--checkpoint-keep-last", "2"); code != 0 || !strings.Contains(out, "deleted 3 checkpoint(s)") {
		t.Errorf("prune: exit %d: %s", code, out)
	}
	if out, code := run("rebuild-projections", "--database-url", db.URL); code != 0 || !strings.Contains(out, "rebuilt the workflow projections from 6 event(s)") {
		t.Errorf("rebuild-projections: exit %d: %s", code, out)
	}
	var n int
	db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints`).Scan(&n)
	if n != 2 {
		t.Errorf("%d checkpoints after prune and rebuild, want 2", n)
	}
}
