package agents

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// RecordParams describe one execution of an agent.
type RecordParams struct {
	AgentID    string
	WorkflowID string // optional; becomes the agent's workflow_id
	TokensIn   int64
	TokensOut  int64
	DurationMS int64
	CostUSD    float64
	Outcome    string // success, failure, timeout or cancelled
	Error      string
	// IdempotencyKey makes a retry return the first recording's result and write nothing.
	IdempotencyKey string
	// At backdates the execution (imports, tests); zero means now. Buckets are UTC.
	At    time.Time
	Actor string
}

// Recorded is what Record wrote.
type Recorded struct {
	ExecutionID int64  `json:"execution_id"`
	AgentID     string `json:"agent_id"`
	// AgentTokensUsed is the agent's token total right after this execution was added.
	AgentTokensUsed int64     `json:"agent_tokens_used"`
	Duplicate       bool      `json:"duplicate"`
	CreatedAt       time.Time `json:"created_at"`
}

// Record records an execution and adds its tokens to the agent's tokens_used, in one round trip
// and one transaction with the ExecutionRecorded event and the rollups; concurrent executions of
// one agent add up exactly.
func (s *Store) Record(ctx context.Context, p RecordParams) (Recorded, error) {
	if err := checkID("agent_id", p.AgentID); err != nil {
		return Recorded{}, err
	}
	if len(p.WorkflowID) > MaxIDLen {
		return Recorded{}, inputErrorf("workflow_id may be at most %d bytes", MaxIDLen)
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"tokens_in", p.TokensIn}, {"tokens_out", p.TokensOut}, {"duration_ms", p.DurationMS}} {
		if f.v < 0 {
			return Recorded{}, inputErrorf("%s %d: must be 0 or more", f.name, f.v)
		}
	}
	if p.TokensIn > math.MaxInt64/4 || p.TokensOut > math.MaxInt64/4 {
		return Recorded{}, inputErrorf("tokens_in/tokens_out are implausibly large; send the tokens of this one execution")
	}
	if p.CostUSD < 0 || math.IsNaN(p.CostUSD) || math.IsInf(p.CostUSD, 0) || p.CostUSD >= 1e10 {
		return Recorded{}, inputErrorf("cost_usd %v: must be a number from 0 to under 10,000,000,000 (US dollars)", p.CostUSD)
	}
	if !validOutcome(p.Outcome) {
		return Recorded{}, inputErrorf("outcome %q: use one of %s", p.Outcome, strings.Join(Outcomes, ", "))
	}
	if len(p.Error) > MaxErrorLen {
		return Recorded{}, inputErrorf("error is %d bytes; at most %d (send the message, not the whole log)", len(p.Error), MaxErrorLen)
	}
	if len(p.IdempotencyKey) > eventstore.MaxKeyLen {
		return Recorded{}, inputErrorf("idempotency_key may be at most %d bytes", eventstore.MaxKeyLen)
	}
	var at *time.Time
	if !p.At.IsZero() {
		at = &p.At
	}
	evMeta, _ := json.Marshal(eventstore.Metadata{Actor: p.Actor})
	r := Recorded{AgentID: p.AgentID}
	err := s.pool.QueryRow(ctx, recordExecutionSQL,
		p.AgentID, nilIfEmpty(p.WorkflowID), p.TokensIn, p.TokensOut, p.DurationMS, p.CostUSD, p.Outcome, nilIfEmpty(p.Error),
		at, string(evMeta), nilIfEmpty(p.IdempotencyKey)).
		Scan(&r.ExecutionID, &r.AgentTokensUsed, &r.Duplicate, &r.CreatedAt)
	if err != nil {
		return Recorded{}, wrap(translate(err, p.AgentID), "record execution of %s", p.AgentID)
	}
	r.CreatedAt = r.CreatedAt.UTC()
	return r, nil
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// pruneBatch bounds one transaction of pruning, so it never holds locks for long.
const pruneBatch = 10000

// PruneExecutions deletes raw executions older than maxAge, in batches, and returns how many it
// deleted. The rollups (so agent_metrics and Totals) and the event history keep them; a maxAge
// of 0 keeps everything.
func (s *Store) PruneExecutions(ctx context.Context, maxAge time.Duration) (int, error) {
	if maxAge < 0 {
		return 0, inputErrorf("execution max age must not be negative")
	}
	if maxAge == 0 {
		return 0, nil
	}
	age := fmt.Sprintf("%d microseconds", maxAge.Microseconds())
	total := 0
	for {
		var n int
		if err := s.pool.QueryRow(ctx, pruneExecutionsSQL, age, pruneBatch).Scan(&n); err != nil {
			return total, fmt.Errorf("prune agent executions: %w", err)
		}
		total += n
		if n < pruneBatch {
			return total, nil
		}
	}
}
