package mcp_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestAgentToolsAndSeedSQL: registration, updates from the tools and from the predecessor's raw
// SQL (verbatim, through execute), the paired columns, and the history of both.
func TestAgentToolsAndSeedSQL(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)

	a := ok(t, cs, "agent_register", map[string]any{"agent_id": "agent-abc123", "name": "r1", "template": "researcher", "metadata": map[string]any{"team": "search"}})
	if a["agent_id"] != "agent-abc123" || a["state"] != "registered" || a["template"] != "researcher" {
		t.Fatalf("register = %v", a)
	}
	anon := ok(t, cs, "agent_register", map[string]any{"template": "researcher"})
	if id, _ := anon["agent_id"].(string); len(id) != 36 {
		t.Fatalf("register without agent_id = %v", anon)
	}
	fails(t, cs, "agent_register", map[string]any{"agent_id": "agent-abc123", "template": "researcher"}, "agent-abc123", "exists already", "agent_update")

	u := ok(t, cs, "agent_update", map[string]any{"agent_id": "agent-abc123", "state": "running", "tokens_used": 1000, "metadata": map[string]any{"step": 1}})
	if u["state"] != "running" || num(u["tokens_used"]) != 1000 || fmt.Sprint(u["metadata"]) != "map[step:1 team:search]" {
		t.Fatalf("update = %v", u)
	}

	// The predecessor's statements, verbatim.
	ok(t, cs, "execute", map[string]any{"sql": "UPDATE agents SET status = $1 WHERE agent_id = $2", "params": []any{"completed", "agent-abc123"}})
	g := ok(t, cs, "agent_get", map[string]any{"agent_id": "agent-abc123"})
	if g["state"] != "completed" {
		t.Fatalf("after the seed's status update, agent_get = %v", g)
	}
	ok(t, cs, "execute", map[string]any{"sql": `
        UPDATE agents
        SET state = $1, tokens_used = $2, updated_at = NOW()
        WHERE agent_id = $3
        `, "params": []any{"running", 40000, "agent-abc123"}})
	row := rows(t, ok(t, cs, "query", map[string]any{"sql": "SELECT * FROM agents WHERE state = $1", "params": []any{"running"}}))
	if len(row) != 1 || row[0]["status"] != "running" || row[0]["template_name"] != "researcher" || num(row[0]["tokens_used"]) != 40000 {
		t.Fatalf("SELECT * FROM agents WHERE state = running: %v", row)
	}
	sel := rows(t, ok(t, cs, "query", map[string]any{"sql": "SELECT * FROM agents WHERE template = $1 AND tokens_used < $2", "params": []any{"researcher", 50000}}))
	if len(sel) != 2 {
		t.Fatalf("SELECT * FROM agents WHERE template = $1 AND tokens_used < $2: %v", sel)
	}
	for _, ddl := range []string{
		"CREATE INDEX IF NOT EXISTS idx_agents_template ON agents(template_name)",
		"CREATE INDEX IF NOT EXISTS idx_executions_created ON agent_executions(created_at DESC)",
	} {
		ok(t, cs, "execute", map[string]any{"sql": ddl})
	}

	hist := rows(t, ok(t, cs, "query", map[string]any{"sql": "SELECT type, data->>'op' AS op, data->'row'->>'status' AS status FROM events WHERE stream_id = $1 ORDER BY version",
		"params": []any{"agent:agent-abc123"}}))
	var got []string
	for _, e := range hist {
		got = append(got, fmt.Sprint(e["type"], "/", e["op"], "/", e["status"]))
	}
	if strings.Join(got, ", ") != "AgentRegistered/<nil>/<nil>, AgentUpdated/<nil>/<nil>, RawRowWritten/UPDATE/completed, RawRowWritten/UPDATE/running" {
		t.Errorf("agent history = %v", got)
	}

	// Executions through the tool; the seed's time-series query sees them.
	args := map[string]any{"agent_id": "agent-abc123", "workflow_id": "wf-1", "tokens_in": 300, "tokens_out": 200, "duration_ms": 1500,
		"cost_usd": 0.02, "outcome": "success", "idempotency_key": "exec-1"}
	first := ok(t, cs, "agent_record_execution", args)
	again := ok(t, cs, "agent_record_execution", args)
	if num(first["agent_tokens_used"]) != 40500 || again["duplicate"] != true || first["duplicate"] != false ||
		num(again["execution_id"]) != num(first["execution_id"]) || num(again["agent_tokens_used"]) != 40500 || again["created_at"] != first["created_at"] {
		t.Fatalf("retry = %v, first = %v", again, first)
	}
	if n := scalar(t, cs, "SELECT count(*) FROM agent_executions WHERE agent_id = $1", "agent-abc123"); n != "1" {
		t.Fatalf("executions after a retried record = %s", n)
	}
	usage := rows(t, ok(t, cs, "query", map[string]any{"sql": `
        SELECT
            DATE_TRUNC('day', created_at) as day,
            template_name,
            SUM(tokens_used) as total_tokens
        FROM agent_executions
        WHERE created_at > NOW() - INTERVAL '30 days'
        GROUP BY day, template_name
        ORDER BY day DESC
        `}))
	if len(usage) != 1 || usage[0]["template_name"] != "researcher" || num(usage[0]["total_tokens"]) != 500 {
		t.Fatalf("token usage = %v", usage)
	}
	g = ok(t, cs, "agent_get", map[string]any{"agent_id": "agent-abc123"})
	if num(g["tokens_used"]) != 40500 || g["workflow_id"] != "wf-1" {
		t.Errorf("agent after execution = %v", g)
	}

	// Concurrent executions of one agent through MCP add up exactly.
	var wg sync.WaitGroup
	for w := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 10 {
				r := call(t, cs, "agent_record_execution", map[string]any{"agent_id": "agent-abc123", "tokens_in": w, "tokens_out": i, "duration_ms": 5, "outcome": "success"})
				if r.IsError {
					t.Errorf("concurrent record: %s", r.Text)
				}
			}
		}()
	}
	wg.Wait()
	want := int64(40500)
	for w := range 20 {
		for i := range 10 {
			want += int64(w + i)
		}
	}
	if g := ok(t, cs, "agent_get", map[string]any{"agent_id": "agent-abc123"}); num(g["tokens_used"]) != want {
		t.Errorf("tokens_used after 200 concurrent executions = %v, want %d", g["tokens_used"], want)
	}

	list := ok(t, cs, "agent_list", map[string]any{"state": "running", "template": "researcher"})
	if as := list["agents"].([]any); len(as) != 1 || as[0].(map[string]any)["agent_id"] != "agent-abc123" {
		t.Errorf("agent_list = %v", list)
	}
}

// TestAgentMetricsOverMCP: executions written by raw SQL with chosen times (the rollups follow
// them), across a UTC day boundary, asked for with offsets.
func TestAgentMetricsOverMCP(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	ok(t, cs, "agent_register", map[string]any{"agent_id": "r1", "template": "researcher"})
	ok(t, cs, "agent_register", map[string]any{"agent_id": "c1", "template": "coder"})
	for _, e := range []struct {
		agent, at, outcome string
		in, out, dur       int
		cost               float64
	}{
		{"r1", "2026-11-10T23:30:00Z", "success", 100, 10, 100, 0.5},
		{"r1", "2026-11-11T00:30:00Z", "failure", 200, 20, 400, 0.25},
		{"r1", "2026-11-13T10:00:00Z", "success", 1, 2, 3, 0},
		{"c1", "2026-11-11T00:45:00Z", "success", 7, 7, 7, 0},
	} {
		ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO agent_executions (agent_id, tokens_in, tokens_out, duration_ms, cost_usd, outcome, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
			"params": []any{e.agent, e.in, e.out, e.dur, e.cost, e.outcome, e.at}})
	}
	type bucket struct {
		start       string
		execs, toks int64
		rate        string
	}
	series := func(m map[string]any) []bucket {
		var out []bucket
		for _, x := range m["series"].([]any) {
			p := x.(map[string]any)
			out = append(out, bucket{p["start"].(string), num(p["executions"]), num(p["tokens"]), fmt.Sprint(p["success_rate"])})
		}
		return out
	}
	// since 04:00+05:30 on the 11th is 22:30Z on the 10th: the series starts on the 10th.
	m := ok(t, cs, "agent_metrics", map[string]any{"template": "researcher", "bucket": "day", "since": "2026-11-11T04:00:00+05:30", "until": "2026-11-13T12:00:00Z"})
	if got := fmt.Sprint(series(m)); got != "[{2026-11-10T00:00:00Z 1 110 1} {2026-11-11T00:00:00Z 1 220 0} {2026-11-12T00:00:00Z 0 0 <nil>} {2026-11-13T00:00:00Z 1 3 1}]" {
		t.Errorf("researcher by day = %s", got)
	}
	tot := m["totals"].(map[string]any)
	if num(tot["executions"]) != 3 || num(tot["tokens"]) != 333 || fmt.Sprint(tot["cost_usd"]) != "0.75" || num(tot["failures"]) != 1 {
		t.Errorf("totals = %v", tot)
	}
	if m["time_zone"] != "UTC" || !strings.Contains(fmt.Sprint(m["percentiles"]), "histogram") {
		t.Errorf("metrics = %v", m)
	}
	// Hours across midnight for everything; the edges are given at -05:00 and round to whole hours.
	h := ok(t, cs, "agent_metrics", map[string]any{"bucket": "hour", "since": "2026-11-10T18:10:00-05:00", "until": "2026-11-10T19:50:00-05:00"})
	if got := fmt.Sprint(series(h)); got != "[{2026-11-10T23:00:00Z 1 110 1} {2026-11-11T00:00:00Z 2 234 0.5}]" {
		t.Errorf("all by hour = %s", got)
	}
	// One agent; a date means midnight UTC.
	r := ok(t, cs, "agent_metrics", map[string]any{"agent_id": "c1", "bucket": "day", "since": "2026-11-11", "until": "2026-11-12"})
	if got := fmt.Sprint(series(r)); got != "[{2026-11-11T00:00:00Z 1 14 1}]" {
		t.Errorf("c1 by day = %s", got)
	}
	if p := r["series"].([]any)[0].(map[string]any); fmt.Sprint(p["p50_duration_ms"]) != "7" || fmt.Sprint(p["p95_duration_ms"]) != "7" {
		t.Errorf("c1 percentiles = %v", p)
	}
}

// TestAgentToolsBadArguments: every bad argument of every agent tool is a tool error that says
// what to fix.
func TestAgentToolsBadArguments(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	ok(t, cs, "agent_register", map[string]any{"agent_id": "a", "template": "researcher"})
	rec := func(extra map[string]any) map[string]any {
		m := map[string]any{"agent_id": "a", "tokens_in": 1, "tokens_out": 1, "duration_ms": 1, "outcome": "success"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	for _, tc := range []struct {
		tool  string
		args  map[string]any
		wants []string
	}{
		{"agent_register", map[string]any{}, []string{"template"}},
		{"agent_register", map[string]any{"template": ""}, []string{"template is required"}},
		{"agent_register", map[string]any{"template": "x", "metadata": []any{1}}, []string{"metadata", "object"}},
		{"agent_register", map[string]any{"template": "x", "agent_id": strings.Repeat("a", 201)}, []string{"agent_id", "at most 200"}},
		{"agent_register", map[string]any{"template": 5}, []string{"template"}},
		{"agent_register", map[string]any{"template": "x", "colour": "red"}, []string{"colour"}},
		{"agent_update", map[string]any{"agent_id": "a"}, []string{"nothing to update"}},
		{"agent_update", map[string]any{"agent_id": "ghost", "state": "running"}, []string{"ghost", "does not exist"}},
		{"agent_update", map[string]any{"agent_id": "a", "tokens_used": -5}, []string{"tokens_used", "0 or more"}},
		{"agent_update", map[string]any{"agent_id": "a", "state": ""}, []string{"state"}},
		{"agent_update", map[string]any{"agent_id": "a", "metadata": "x"}, []string{"metadata", "object"}},
		{"agent_update", map[string]any{"state": "running"}, []string{"agent_id"}},
		{"agent_get", map[string]any{}, []string{"agent_id"}},
		{"agent_get", map[string]any{"agent_id": ""}, []string{"agent_id is required"}},
		{"agent_get", map[string]any{"agent_id": "ghost"}, []string{"ghost", "agent_list"}},
		{"agent_list", map[string]any{"limit": 5000}, []string{"limit", "1 to 1000"}},
		{"agent_list", map[string]any{"limit": -1}, []string{"limit"}},
		{"agent_record_execution", rec(map[string]any{"outcome": "exploded"}), []string{"outcome", "success, failure, timeout, cancelled"}},
		{"agent_record_execution", rec(map[string]any{"tokens_in": -1}), []string{"tokens_in", "0 or more"}},
		{"agent_record_execution", rec(map[string]any{"tokens_out": -1}), []string{"tokens_out", "0 or more"}},
		{"agent_record_execution", rec(map[string]any{"duration_ms": -1}), []string{"duration_ms", "0 or more"}},
		{"agent_record_execution", rec(map[string]any{"cost_usd": -0.5}), []string{"cost_usd"}},
		{"agent_record_execution", rec(map[string]any{"agent_id": "ghost"}), []string{"ghost", "agent_register"}},
		{"agent_record_execution", rec(map[string]any{"error": strings.Repeat("x", 10001)}), []string{"error", "at most 10000"}},
		{"agent_record_execution", rec(map[string]any{"idempotency_key": strings.Repeat("k", 201)}), []string{"idempotency_key"}},
		{"agent_record_execution", rec(map[string]any{"tokens_in": "many"}), []string{"tokens_in"}},
		{"agent_record_execution", map[string]any{"agent_id": "a", "outcome": "success"}, []string{"tokens_in"}},
		{"agent_metrics", map[string]any{}, []string{"bucket"}},
		{"agent_metrics", map[string]any{"bucket": "week"}, []string{"bucket", "hour", "day"}},
		{"agent_metrics", map[string]any{"bucket": "day", "since": "yesterday"}, []string{"since", "RFC 3339"}},
		{"agent_metrics", map[string]any{"bucket": "day", "until": "2026-13-01"}, []string{"until", "RFC 3339"}},
		{"agent_metrics", map[string]any{"bucket": "day", "since": "2026-11-02", "until": "2026-11-01"}, []string{"until", "after since"}},
		{"agent_metrics", map[string]any{"bucket": "hour", "since": "2025-01-01", "until": "2026-01-01"}, []string{"at most 1000", "day"}},
		{"agent_metrics", map[string]any{"bucket": "day", "template": "nobody"}, []string{"nobody", "agent_list"}},
		{"agent_metrics", map[string]any{"bucket": "day", "agent_id": "ghost"}, []string{"ghost", "does not exist"}},
	} {
		t.Run(fmt.Sprintf("%s %v", tc.tool, tc.args), func(t *testing.T) {
			fails(t, cs, tc.tool, tc.args, tc.wants...)
		})
	}
	// Nothing above wrote anything.
	if got := scalar(t, cs, "SELECT count(*) FROM agent_executions"); got != "0" {
		t.Errorf("executions = %s", got)
	}
}

func TestAgentWritesRefusedReadOnly(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--read-only")
	fails(t, cs, "agent_register", map[string]any{"template": "x"}, "read-only")
	fails(t, cs, "agent_update", map[string]any{"agent_id": "x", "state": "y"}, "read-only")
	fails(t, cs, "agent_record_execution", map[string]any{"agent_id": "x", "tokens_in": 1, "tokens_out": 1, "duration_ms": 1, "outcome": "success"}, "read-only")
	ok(t, cs, "agent_list", map[string]any{})
	ok(t, cs, "agent_metrics", map[string]any{"bucket": "day"})
}

// TestAgentToolsetAndAnnotations: the agents toolset can be chosen alone or left out, and its
// tools say truthfully whether they write.
func TestAgentToolsetAndAnnotations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	names := func(args ...string) map[string]*sdk.Tool {
		res, err := stdioClient(t, db, args...).ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]*sdk.Tool{}
		for _, tool := range res.Tools {
			m[tool.Name] = tool
		}
		return m
	}
	only := names("--toolsets", "agents")
	readOnly := map[string]bool{"agent_register": false, "agent_update": false, "agent_record_execution": false,
		"agent_get": true, "agent_list": true, "agent_metrics": true}
	if len(only) != len(readOnly) {
		t.Errorf("--toolsets agents lists %d tools: %v", len(only), only)
	}
	for name, ro := range readOnly {
		tool := only[name]
		if tool == nil {
			t.Errorf("%s is not listed", name)
			continue
		}
		if tool.Annotations == nil || tool.Annotations.ReadOnlyHint != ro || (!ro && tool.Annotations.DestructiveHint == nil) {
			t.Errorf("%s annotations = %+v", name, tool.Annotations)
		}
	}
	if !strings.Contains(only["agent_metrics"].Description, "9.05%") || !strings.Contains(only["agent_metrics"].Description, "UTC") {
		t.Errorf("agent_metrics description does not state the percentile method and UTC: %s", only["agent_metrics"].Description)
	}
	if without := names("--toolsets", "generic"); without["agent_get"] != nil {
		t.Error("agent tools listed without the agents toolset")
	}
}
