package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/internal/callerr"
)

// AgentRegisterArgs are the arguments of agent_register.
type AgentRegisterArgs struct {
	AgentID  string          `json:"agent_id,omitempty" jsonschema:"default a new id"`
	Name     string          `json:"name,omitempty"`
	Template string          `json:"template" jsonschema:"the kind of agent, e.g. researcher"`
	Metadata json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object"`
}

// AgentUpdateArgs are the arguments of agent_update.
type AgentUpdateArgs struct {
	AgentID    string          `json:"agent_id"`
	State      *string         `json:"state,omitempty" jsonschema:"e.g. running"`
	TokensUsed *int64          `json:"tokens_used,omitempty" jsonschema:"the new total"`
	Metadata   json.RawMessage `json:"metadata,omitempty" jsonschema:"merged key by key"`
}

// AgentIDArgs name one agent.
type AgentIDArgs struct {
	AgentID string `json:"agent_id"`
}

// AgentListArgs are the arguments of agent_list.
type AgentListArgs struct {
	State    string `json:"state,omitempty"`
	Template string `json:"template,omitempty"`
	Limit    int    `json:"limit,omitempty" jsonschema:"default 50, at most 1000"`
}

// AgentListResult lists agents, most recently updated first.
type AgentListResult struct {
	Agents []agents.Agent `json:"agents"`
}

// AgentRecordArgs are the arguments of agent_record_execution.
type AgentRecordArgs struct {
	AgentID        string   `json:"agent_id"`
	WorkflowID     string   `json:"workflow_id,omitempty"`
	TokensIn       int64    `json:"tokens_in"`
	TokensOut      int64    `json:"tokens_out"`
	DurationMS     int64    `json:"duration_ms"`
	CostUSD        *float64 `json:"cost_usd,omitempty"`
	Outcome        string   `json:"outcome" jsonschema:"success, failure, timeout or cancelled"`
	Error          string   `json:"error,omitempty"`
	IdempotencyKey string   `json:"idempotency_key,omitempty"`
}

// AgentMetricsArgs are the arguments of agent_metrics.
type AgentMetricsArgs struct {
	Template string `json:"template,omitempty"`
	AgentID  string `json:"agent_id,omitempty"`
	Since    string `json:"since,omitempty" jsonschema:"RFC 3339 or date; default 30 days back (48 h by hour)"`
	Until    string `json:"until,omitempty" jsonschema:"exclusive; default now"`
	Bucket   string `json:"bucket" jsonschema:"hour or day"`
}

// parseTime reads an RFC 3339 time (any offset) or a bare date, which is midnight UTC.
func parseTime(what, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, &callerr.Input{Msg: what + " " + quote(s) + ": use an RFC 3339 time such as 2026-11-20T00:00:00Z or 2026-11-20T05:30:00+05:30, or a date such as 2026-11-20 (midnight UTC)"}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Server) addAgentTools() {
	ag := s.agents
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "agent_register", Title: "Register an agent", Annotations: write,
		Description: `Register an agent; metrics group agents by template. Example: {"agent_id": "agent-1", "template": "researcher"}`},
		func(ctx context.Context, in AgentRegisterArgs) (*agents.Agent, error) {
			return ag.Register(ctx, agents.RegisterParams{AgentID: in.AgentID, Name: in.Name, Template: in.Template, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_update", Title: "Update an agent", Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true},
		Description: `Change an agent's state, token total or metadata. Example: {"agent_id": "agent-1", "state": "running"}`},
		func(ctx context.Context, in AgentUpdateArgs) (*agents.Agent, error) {
			return ag.Update(ctx, agents.UpdateParams{AgentID: in.AgentID, State: in.State, TokensUsed: in.TokensUsed, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_get", Title: "Get an agent", Annotations: ro,
		Description: `Get an agent.`},
		func(ctx context.Context, in AgentIDArgs) (*agents.Agent, error) {
			return ag.Get(ctx, in.AgentID)
		})
	addTool(s, &sdk.Tool{Name: "agent_list", Title: "List agents", Annotations: ro,
		Description: `Agents, most recently updated first. Example: {"template": "researcher"}`},
		func(ctx context.Context, in AgentListArgs) (AgentListResult, error) {
			as, err := ag.List(ctx, agents.ListParams{State: in.State, Template: in.Template, Limit: in.Limit})
			return AgentListResult{Agents: nonNil(as)}, err
		})
	addTool(s, &sdk.Tool{Name: "agent_record_execution", Title: "Record an execution", Annotations: write,
		Description: `Record one run of an agent and add its tokens to its total; with idempotency_key a retry adds nothing.
Example: {"agent_id": "agent-1", "tokens_in": 1200, "tokens_out": 300, "duration_ms": 4200, "outcome": "success"}`},
		func(ctx context.Context, in AgentRecordArgs) (agents.Recorded, error) {
			cost := 0.0
			if in.CostUSD != nil {
				cost = *in.CostUSD
			}
			return ag.Record(ctx, agents.RecordParams{AgentID: in.AgentID, WorkflowID: in.WorkflowID, TokensIn: in.TokensIn, TokensOut: in.TokensOut,
				DurationMS: in.DurationMS, CostUSD: cost, Outcome: in.Outcome, Error: in.Error, IdempotencyKey: in.IdempotencyKey, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_metrics", Title: "Agent metrics", Annotations: ro,
		Description: `Runs, tokens, cost, success rate and p50/p95 duration (within 9.05%) per UTC hour or day, with totals. Example: {"template": "researcher", "bucket": "day"}`},
		func(ctx context.Context, in AgentMetricsArgs) (*agents.Metrics, error) {
			since, err := parseTime("since", in.Since)
			if err != nil {
				return nil, err
			}
			until, err := parseTime("until", in.Until)
			if err != nil {
				return nil, err
			}
			return ag.Metrics(ctx, agents.MetricsParams{Template: strings.TrimSpace(in.Template), AgentID: in.AgentID, Since: since, Until: until, Bucket: in.Bucket})
		})
}
