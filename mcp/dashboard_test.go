package mcp_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// Every metric the Grafana dashboard (deploy/grafana/dashboards/cairn.json) queries is one that
// serve or a worker exposes: a dashboard naming a metric nobody serves shows an empty panel.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("..", "deploy", "grafana", "dashboards", "cairn.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("the dashboard is not JSON: %v", err)
	}
	metric := regexp.MustCompile(`\b((?:cairn|go|process)_[a-z0-9_]+)\b`)
	wanted := map[string][]string{} // metric family → panels
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, m := range metric.FindAllString(tg.Expr, -1) {
				fam := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
				wanted[fam] = append(wanted[fam], p.Title)
			}
		}
	}
	if len(wanted) < 15 {
		t.Fatalf("the dashboard names only %d metrics: %v", len(wanted), wanted)
	}

	// A serve with something in every series the dashboard reads: tool calls ok and failed, a
	// checkpoint conflict, an agent execution, an open SSE session. (A worker's /metrics is the
	// same but for the tool calls, TestWorkerOpsEndpoints.)
	db := testdb.New(t)
	base, _, _ := httpProcess(t, []string{"CAIRN_AUTH_TOKEN=tok"}, "--database-url", db.URL, "--embedder", "builtin")
	cs, _, err := connectAs(base, "http", "tok")
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	ok(t, cs, "workflow_start", map[string]any{"name": "w", "workflow_id": "wf-dash"})
	ok(t, cs, "checkpoint_save", map[string]any{"workflow_id": "wf-dash", "node_id": "a", "state": map[string]any{}, "expected_version": 1})
	fails(t, cs, "checkpoint_save", map[string]any{"workflow_id": "wf-dash", "node_id": "b", "state": map[string]any{}, "expected_version": 1}, "version")
	ok(t, cs, "agent_register", map[string]any{"template": "coder", "agent_id": "a1"})
	ok(t, cs, "agent_record_execution", map[string]any{"agent_id": "a1", "tokens_in": 10, "tokens_out": 5, "duration_ms": 100, "outcome": "failure", "cost_usd": 0.01})
	_, stop := openSSE(t, base, "tok")
	defer stop()
	served := scrape(t, base, "tok")
	var missing []string
	for fam, panels := range wanted {
		if served[fam] == nil {
			missing = append(missing, fam+" ("+strings.Join(slices.Compact(panels), ", ")+")")
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("the dashboard queries metrics /metrics does not expose:\n  %s", strings.Join(missing, "\n  "))
	}
}
