package mcp

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/agents"
)

// AgentRegisterArgs are the arguments of agent_register.
type AgentRegisterArgs struct {
	AgentID  string          `json:"agent_id,omitempty" jsonschema:"your own id for the agent; default a new time-ordered id"`
	Name     string          `json:"name,omitempty" jsonschema:"a readable name"`
	Template string          `json:"template" jsonschema:"the kind of agent, e.g. researcher; metrics are grouped by it"`
	Metadata json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object of your own"`
}

// AgentUpdateArgs are the arguments of agent_update.
type AgentUpdateArgs struct {
	AgentID    string          `json:"agent_id" jsonschema:"the agent"`
	State      *string         `json:"state,omitempty" jsonschema:"the new state, e.g. running or completed (status is the same value)"`
	TokensUsed *int64          `json:"tokens_used,omitempty" jsonschema:"the agent's new token total (agent_record_execution adds to it for you)"`
	Metadata   json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object merged key by key into the agent's metadata"`
}

// AgentIDArgs name one agent.
type AgentIDArgs struct {
	AgentID string `json:"agent_id" jsonschema:"the agent"`
}

// AgentListArgs are the arguments of agent_list.
type AgentListArgs struct {
	State    string `json:"state,omitempty" jsonschema:"only agents in this state, e.g. running"`
	Template string `json:"template,omitempty" jsonschema:"only agents of this template"`
	Limit    int    `json:"limit,omitempty" jsonschema:"how many (default 50, at most 1000)"`
}

// AgentListResult lists agents, most recently updated first.
type AgentListResult struct {
	Agents []agents.Agent `json:"agents"`
}

// AgentRecordArgs are the arguments of agent_record_execution.
type AgentRecordArgs struct {
	AgentID        string   `json:"agent_id" jsonschema:"the agent that ran"`
	WorkflowID     string   `json:"workflow_id,omitempty" jsonschema:"the workflow it ran in"`
	TokensIn       int64    `json:"tokens_in" jsonschema:"prompt tokens, 0 or more"`
	TokensOut      int64    `json:"tokens_out" jsonschema:"completion tokens, 0 or more"`
	DurationMS     int64    `json:"duration_ms" jsonschema:"how long it ran, in milliseconds"`
	CostUSD        *float64 `json:"cost_usd,omitempty" jsonschema:"what it cost in US dollars; default 0"`
	Outcome        string   `json:"outcome" jsonschema:"success, failure, timeout or cancelled"`
	Error          string   `json:"error,omitempty" jsonschema:"what went wrong, for failures"`
	IdempotencyKey string   `json:"idempotency_key,omitempty" jsonschema:"the same key again returns the first recording and adds nothing: safe retries"`
}

// AgentMetricsArgs are the arguments of agent_metrics.
type AgentMetricsArgs struct {
	Template string `json:"template,omitempty" jsonschema:"only agents of this template"`
	AgentID  string `json:"agent_id,omitempty" jsonschema:"only this agent"`
	Since    string `json:"since,omitempty" jsonschema:"RFC 3339 time with any offset, e.g. 2026-11-01T00:00:00Z or 2026-11-01T05:30:00+05:30, or a date (UTC midnight); rounded down to its UTC bucket; default 30 days (day) or 48 hours (hour) before until"`
	Until    string `json:"until,omitempty" jsonschema:"RFC 3339 time or date, exclusive, rounded up to the end of its UTC bucket; default now"`
	Bucket   string `json:"bucket" jsonschema:"hour or day (UTC)"`
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
	return time.Time{}, &agents.InputError{Msg: what + " " + quote(s) + ": use an RFC 3339 time such as 2026-11-20T00:00:00Z or 2026-11-20T05:30:00+05:30, or a date such as 2026-11-20 (midnight UTC)"}
}

func quote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (s *Server) addAgentTools() {
	ag := s.agents
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "agent_register", Title: "Register an agent", Annotations: write,
		Description: `Register an agent under a template (the kind of agent; metrics group by it), in state "registered". An agent_id that exists is refused.
Example: {"agent_id": "agent-abc123", "name": "researcher #1", "template": "researcher"}`},
		func(ctx context.Context, in AgentRegisterArgs) (*agents.Agent, error) {
			return ag.Register(ctx, agents.RegisterParams{AgentID: in.AgentID, Name: in.Name, Template: in.Template, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_update", Title: "Update an agent", Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
		Description: `Change an agent's state (e.g. running, completed), token total and/or metadata (merged key by key). Recorded in the agent's history.
Example: {"agent_id": "agent-abc123", "state": "running"}`},
		func(ctx context.Context, in AgentUpdateArgs) (*agents.Agent, error) {
			return ag.Update(ctx, agents.UpdateParams{AgentID: in.AgentID, State: in.State, TokensUsed: in.TokensUsed, Metadata: in.Metadata, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_get", Title: "Get an agent", Annotations: ro,
		Description: `Get an agent: template, state, token total, metadata, last workflow. Example: {"agent_id": "agent-abc123"}`},
		func(ctx context.Context, in AgentIDArgs) (*agents.Agent, error) {
			return ag.Get(ctx, in.AgentID)
		})
	addTool(s, &sdk.Tool{Name: "agent_list", Title: "List agents", Annotations: ro,
		Description: `List agents, most recently updated first, by state and template. Example: {"state": "running", "template": "researcher"}`},
		func(ctx context.Context, in AgentListArgs) (AgentListResult, error) {
			as, err := ag.List(ctx, agents.ListParams{State: in.State, Template: in.Template, Limit: in.Limit})
			return AgentListResult{Agents: nonNil(as)}, err
		})
	addTool(s, &sdk.Tool{Name: "agent_record_execution", Title: "Record an execution", Annotations: write,
		Description: `Record one execution of an agent — tokens in and out, duration, cost, outcome (success, failure, timeout or cancelled), error — and add its tokens to the agent's tokens_used, atomically. Pass idempotency_key to make retries safe.
Example: {"agent_id": "agent-abc123", "tokens_in": 1200, "tokens_out": 300, "duration_ms": 4200, "cost_usd": 0.0135, "outcome": "success"}
Returns {"execution_id", "agent_id", "agent_tokens_used", "duplicate", "created_at"}.`},
		func(ctx context.Context, in AgentRecordArgs) (agents.Recorded, error) {
			cost := 0.0
			if in.CostUSD != nil {
				cost = *in.CostUSD
			}
			return ag.Record(ctx, agents.RecordParams{AgentID: in.AgentID, WorkflowID: in.WorkflowID, TokensIn: in.TokensIn, TokensOut: in.TokensOut,
				DurationMS: in.DurationMS, CostUSD: cost, Outcome: in.Outcome, Error: in.Error, IdempotencyKey: in.IdempotencyKey, Actor: "mcp"})
		})
	addTool(s, &sdk.Tool{Name: "agent_metrics", Title: "Agent metrics", Annotations: ro,
		Description: `Executions, tokens, cost, success rate and p50/p95 duration per UTC hour or day, empty buckets included, plus totals — for a template, an agent, or everything.
Buckets are UTC: since is rounded down to the start of its bucket, until up to the end of its bucket; times may carry any offset (2026-11-20T05:30:00+05:30 is 00:00 UTC).
Read from hourly/daily rollups, so a month costs the same with a thousand executions or millions. Percentiles are ` + agents.PercentileMethod + `.
Example: {"template": "researcher", "bucket": "day", "since": "2026-11-01T00:00:00Z"}`},
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
