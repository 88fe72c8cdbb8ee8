// Package agents is cairn's agent registry and execution metrics: agent frameworks register
// agents, update their state as they run, and record every execution (tokens, duration, cost,
// outcome); metrics come per UTC hour or day from rollups kept in the same transaction as each
// execution. Every change to an agent is an event on the stream "agent:<agent_id>"
// (internal/eventstore), and the agents table is its projection; raw SQL writes to agents and
// agent_executions are recorded as RawRowWritten events by triggers (migrations/0004).
package agents

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/callerr"
)

// Outcomes of an execution.
const (
	OutcomeSuccess   = "success"
	OutcomeFailure   = "failure"
	OutcomeTimeout   = "timeout"
	OutcomeCancelled = "cancelled"
)

// Outcomes lists the valid outcomes.
var Outcomes = []string{OutcomeSuccess, OutcomeFailure, OutcomeTimeout, OutcomeCancelled}

// Event types on an agent's stream.
const (
	EventRegistered = "AgentRegistered"
	EventUpdated    = "AgentUpdated"
	EventExecution  = "ExecutionRecorded"
)

// Limits that keep keys well under PostgreSQL's btree limit and rows reasonable.
const (
	MaxIDLen    = 200
	MaxNameLen  = 500
	MaxErrorLen = 10000
)

// StreamID is the event stream of an agent.
func StreamID(agentID string) string { return "agent:" + agentID }

// Store is the agents API over a pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store on the pool.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Agent is an agent's current state. Template and State are also readable through the seed's
// column names template_name and status, which always hold the same values.
type Agent struct {
	AgentID    string          `json:"agent_id"`
	Name       string          `json:"name"`
	Template   string          `json:"template"`
	State      string          `json:"state"`
	TokensUsed int64           `json:"tokens_used"`
	Metadata   json.RawMessage `json:"metadata"`
	WorkflowID string          `json:"workflow_id,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
}

// NotFoundError says an agent does not exist.
type NotFoundError struct{ AgentID string }

// CallerCanFix marks NotFoundError as the caller's to fix.
func (*NotFoundError) CallerCanFix() {}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("agent %q does not exist (agent_list shows the agents there are; agent_register makes one)", e.AgentID)
}

func inputErrorf(format string, args ...any) error { return callerr.Inputf(format, args...) }

func checkID(what, id string) error {
	if id == "" {
		return inputErrorf("%s is required", what)
	}
	if len(id) > MaxIDLen {
		return inputErrorf("%s is %d bytes long; at most %d", what, len(id), MaxIDLen)
	}
	return nil
}

func validOutcome(o string) bool {
	for _, x := range Outcomes {
		if o == x {
			return true
		}
	}
	return false
}

// translate turns the SQL functions' errors into the package's typed errors.
func translate(err error, agentID string) error {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "CA004":
			return &NotFoundError{AgentID: agentID}
		case "22023":
			return &callerr.Input{Msg: pe.Message}
		}
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return &NotFoundError{AgentID: agentID}
	}
	return err
}

// wrap returns err unchanged when it is one of the package's typed errors (callers branch on
// them and their text is meant for the caller), else wraps it with context.
func wrap(err error, format string, args ...any) error {
	if callerr.Is(err) {
		return err
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
