package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

func scanAgent(r pgx.Row) (*Agent, error) {
	var a Agent
	err := r.Scan(&a.AgentID, &a.Name, &a.Template, &a.State, &a.TokensUsed, &a.Metadata, &a.WorkflowID, &a.CreatedAt, &a.UpdatedAt)
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// RegisterParams describe a new agent.
type RegisterParams struct {
	AgentID  string // default: a new time-ordered id
	Name     string
	Template string // required: what kind of agent it is, e.g. researcher; metrics group by it
	Metadata json.RawMessage
	Actor    string // recorded in the event's metadata
}

// Register creates an agent in state "registered". An agent_id that exists is an *callerr.Input:
// registering is not an upsert, so two runs never share an agent by accident.
func (s *Store) Register(ctx context.Context, p RegisterParams) (*Agent, error) {
	if p.AgentID == "" {
		p.AgentID = newID()
	}
	if err := checkID("agent_id", p.AgentID); err != nil {
		return nil, err
	}
	if p.Template == "" {
		return nil, inputErrorf("template is required: the kind of agent, e.g. \"researcher\" (metrics are grouped by it)")
	}
	if len(p.Template) > MaxIDLen {
		return nil, inputErrorf("template is %d bytes long; at most %d", len(p.Template), MaxIDLen)
	}
	if len(p.Name) > MaxNameLen {
		return nil, inputErrorf("name may be at most %d bytes", MaxNameLen)
	}
	meta, err := callerr.JSONObject("metadata", p.Metadata)
	if err != nil {
		return nil, err
	}
	var a *Agent
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// AnyVersion, not NoStream: an agent deleted by raw SQL may be registered again and
		// continue its history; the primary key refuses a live duplicate.
		if _, err := eventstore.Append(ctx, tx, StreamID(p.AgentID), []eventstore.NewEvent{{Type: EventRegistered,
			Data:     map[string]any{"name": p.Name, "template": p.Template, "metadata": json.RawMessage(meta)},
			Metadata: eventstore.Metadata{Actor: p.Actor}}}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion}); err != nil {
			return err
		}
		a, err = scanAgent(tx.QueryRow(ctx, insertAgentSQL, p.AgentID, p.Name, p.Template, meta))
		return err
	})
	if err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" {
			return nil, inputErrorf("agent %q exists already: use agent_update to change it, or register with another agent_id (or none, for a new one)", p.AgentID)
		}
		return nil, wrap(translate(err, p.AgentID), "register agent %s", p.AgentID)
	}
	return a, nil
}

// UpdateParams change an agent; nil fields stay as they are.
type UpdateParams struct {
	AgentID    string
	State      *string // e.g. running, completed; status follows
	TokensUsed *int64  // the agent's total, as the seed's UPDATE sets it
	Metadata   json.RawMessage
	Actor      string
}

// Update changes an agent's state, token total and metadata (merged key by key into the
// existing object) and records an AgentUpdated event.
func (s *Store) Update(ctx context.Context, p UpdateParams) (*Agent, error) {
	if err := checkID("agent_id", p.AgentID); err != nil {
		return nil, err
	}
	if p.State == nil && p.TokensUsed == nil && len(p.Metadata) == 0 {
		return nil, inputErrorf("nothing to update: give state, tokens_used and/or metadata")
	}
	if p.State != nil && (*p.State == "" || len(*p.State) > MaxIDLen) {
		return nil, inputErrorf("state must be 1 to %d bytes, e.g. \"running\"", MaxIDLen)
	}
	if p.TokensUsed != nil && *p.TokensUsed < 0 {
		return nil, inputErrorf("tokens_used %d: must be 0 or more (it is the agent's total)", *p.TokensUsed)
	}
	var meta *string
	if len(p.Metadata) > 0 {
		m, err := callerr.JSONObject("metadata", p.Metadata)
		if err != nil {
			return nil, err
		}
		meta = &m
	}
	data := map[string]any{}
	if p.State != nil {
		data["state"] = *p.State
	}
	if p.TokensUsed != nil {
		data["tokens_used"] = *p.TokensUsed
	}
	if meta != nil {
		data["metadata"] = json.RawMessage(*meta)
	}
	var a *Agent
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// The agent's row first, then its stream: the order of record_execution and of a raw
		// UPDATE, so that concurrent writers of one agent never deadlock.
		var one int
		if err := tx.QueryRow(ctx, lockAgentSQL, p.AgentID).Scan(&one); err != nil {
			return err
		}
		if _, err := eventstore.Append(ctx, tx, StreamID(p.AgentID), []eventstore.NewEvent{{Type: EventUpdated, Data: data,
			Metadata: eventstore.Metadata{Actor: p.Actor}}}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion}); err != nil {
			return err
		}
		var err error
		a, err = scanAgent(tx.QueryRow(ctx, updateAgentSQL, p.AgentID, p.State, p.TokensUsed, meta))
		return err
	})
	if err != nil {
		return nil, wrap(translate(err, p.AgentID), "update agent %s", p.AgentID)
	}
	return a, nil
}

// Get returns an agent.
func (s *Store) Get(ctx context.Context, agentID string) (*Agent, error) {
	if err := checkID("agent_id", agentID); err != nil {
		return nil, err
	}
	a, err := scanAgent(s.pool.QueryRow(ctx, getAgentSQL, agentID))
	if err != nil {
		return nil, wrap(translate(err, agentID), "get agent %s", agentID)
	}
	return a, nil
}

// ListParams filter List; results are most recently updated first.
type ListParams struct {
	State    string
	Template string
	Limit    int // default 50, at most 1000
}

// List returns agents by state and template.
func (s *Store) List(ctx context.Context, p ListParams) ([]Agent, error) {
	if p.Limit == 0 {
		p.Limit = 50
	}
	if p.Limit < 1 || p.Limit > 1000 {
		return nil, inputErrorf("limit %d: use 1 to 1000", p.Limit)
	}
	rows, err := s.pool.Query(ctx, listAgentsSQL, p.State, p.Template, p.Limit)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Agent, error) {
		a, err := scanAgent(r)
		if err != nil {
			return Agent{}, err
		}
		return *a, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return as, nil
}

// History returns up to limit events of an agent's stream after afterVersion, oldest first:
// registration, updates, executions and raw SQL writes.
func (s *Store) History(ctx context.Context, agentID string, afterVersion int64, limit int) ([]eventstore.Event, error) {
	if err := checkID("agent_id", agentID); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = 100
	}
	if limit < 1 || limit > 1000 {
		return nil, inputErrorf("limit %d: use 1 to 1000", limit)
	}
	return eventstore.ReadStream(ctx, s.pool, StreamID(agentID), afterVersion, limit)
}

// newID returns a UUIDv7 (RFC 9562): time-ordered, and random enough to be made by any number
// of processes without coordination.
func newID() string {
	var b [16]byte
	rand.Read(b[:])
	ms := uint64(time.Now().UnixMilli())
	b[0], b[1], b[2], b[3], b[4], b[5] = byte(ms>>40), byte(ms>>32), byte(ms>>24), byte(ms>>16), byte(ms>>8), byte(ms)
	b[6] = b[6]&0x0f | 0x70
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}
