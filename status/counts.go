package status

import (
	"context"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
)

// domains counts workflows, checkpoints, agents and executions, and lists the interrupted
// workflows. A missing table (a schema behind) leaves its counts null.
func (c *collector) domains(ctx context.Context) error {
	rep := c.rep
	counts := &Counts{}
	rep.Counts = counts
	cps := checkpoint.New(c.pool)
	wc, err := cps.Counts(ctx)
	switch {
	case isUndefinedTable(err):
	case err != nil:
		return err
	default:
		counts.Workflows = wc.Workflows
		var total int64
		for _, n := range wc.Workflows {
			total += n
		}
		counts.WorkflowsTotal, counts.Checkpoints = countPtr(total), countPtr(wc.Checkpoints)
		ws, _, err := cps.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: checkpoint.StatusInterrupted, Limit: interruptedShown})
		if err != nil {
			return err
		}
		rep.Interrupted = &Interrupted{Count: wc.Workflows[checkpoint.StatusInterrupted], Recent: []InterruptedWorkflow{}}
		for _, w := range ws {
			iw := InterruptedWorkflow{ID: w.ID, Name: w.Name}
			// Raw SQL can set the status without an interrupt; then its time is unknown.
			if w.Interrupt != nil {
				iw.Reason = w.Interrupt.Reason
				if !w.Interrupt.At.IsZero() {
					at := w.Interrupt.At.UTC()
					iw.InterruptedAt = &at
				}
			}
			rep.Interrupted.Recent = append(rep.Interrupted.Recent, iw)
		}
	}
	ac, err := agents.New(c.pool).Counts(ctx)
	switch {
	case isUndefinedTable(err):
	case err != nil:
		return err
	default:
		counts.Agents, counts.Executions = countPtr(ac.Agents), countPtr(ac.Executions)
	}
	return nil
}

func countPtr(n int64) *int64 { return &n }
