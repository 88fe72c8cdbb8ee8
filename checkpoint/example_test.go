package checkpoint_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/cairn-mcp/cairn/checkpoint"
)

// An agent framework runs a workflow step by step: it starts the workflow, saves the state
// after each step, and after a restart carries on from the newest checkpoint.
func Example() {
	ctx := context.Background()
	store := checkpoint.New(examplePool())

	w, err := store.Start(ctx, checkpoint.StartParams{ID: "ticket-42", Name: "triage", Input: json.RawMessage(`{"ticket": 42}`)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.ID, w.Status)

	// Each step saves the whole state; cairn stores only the channels that changed.
	steps := []struct{ node, state string }{
		{"classify", `{"messages": ["printer on fire"], "label": "hardware"}`},
		{"assign", `{"messages": ["printer on fire"], "label": "hardware", "owner": "facilities"}`},
	}
	for _, s := range steps {
		if _, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: w.ID, NodeID: s.node, State: json.RawMessage(s.state)}); err != nil {
			log.Fatal(err)
		}
	}

	// After a restart: the newest checkpoint of the top-level namespace ("").
	cp, err := store.Load(ctx, w.ID, "", "")
	if err != nil {
		log.Fatal(err)
	}
	var state struct{ Label, Owner string }
	if err := json.Unmarshal(cp.State, &state); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("resume after %s: label=%s owner=%s\n", cp.NodeID, state.Label, state.Owner)

	cps, err := store.List(ctx, checkpoint.ListParams{WorkflowID: w.ID})
	if err != nil {
		log.Fatal(err)
	}
	for _, c := range cps {
		fmt.Println("checkpoint after", c.NodeID)
	}

	w, err = store.Complete(ctx, w.ID, json.RawMessage(`{"owner": "facilities"}`), "triage-bot")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(w.Status, "at version", w.Version)
	// Output:
	// ticket-42 running
	// resume after assign: label=hardware owner=facilities
	// checkpoint after assign
	// checkpoint after classify
	// completed at version 4
}

// A workflow that needs a human's decision is interrupted with the question; the human's
// inbox is the list of interrupted workflows, and their answer resumes the workflow.
func ExampleStore_Resume() {
	ctx := context.Background()
	store := checkpoint.New(examplePool())

	w, err := store.Start(ctx, checkpoint.StartParams{ID: "refund-7", Name: "refund"})
	if err != nil {
		log.Fatal(err)
	}
	_, err = store.Interrupt(ctx, w.ID, "approval", json.RawMessage(`{"amount_eur": 1200}`), "refund-bot")
	if err != nil {
		log.Fatal(err)
	}

	inbox, _, err := store.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: checkpoint.StatusInterrupted})
	if err != nil {
		log.Fatal(err)
	}
	for _, w := range inbox {
		fmt.Printf("%s waits: %s %s\n", w.ID, w.Interrupt.Reason, w.Interrupt.Payload)
	}

	r, err := store.Resume(ctx, w.ID, json.RawMessage(`"approve"`), "alice")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s answered %s: %s\n", r.Interrupt.Reason, r.Response, r.Workflow.Status)
	// Output:
	// refund-7 waits: approval {"amount_eur": 1200}
	// approval answered "approve": running
}

// Fork starts a new workflow from an earlier checkpoint of another, to try a different path
// from there; the original workflow is left as it was.
func ExampleStore_Fork() {
	ctx := context.Background()
	store := checkpoint.New(examplePool())

	first, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: "plan-1", NodeID: "draft", State: json.RawMessage(`{"plan": "A"}`)})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: "plan-1", NodeID: "revise", State: json.RawMessage(`{"plan": "B"}`)}); err != nil {
		log.Fatal(err)
	}

	fork, _, err := store.Fork(ctx, "plan-1", first.CheckpointID, "plan-1 from the draft", "")
	if err != nil {
		log.Fatal(err)
	}
	cp, err := store.Load(ctx, fork.ID, "", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%q forked from %s starts at %s %s\n", fork.Name, fork.ParentWorkflowID, cp.NodeID, cp.State)

	orig, err := store.Load(ctx, "plan-1", "", "")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("plan-1 is still at %s %s\n", orig.NodeID, orig.State)
	// Output:
	// "plan-1 from the draft" forked from plan-1 starts at draft {"plan": "A"}
	// plan-1 is still at revise {"plan": "B"}
}
