package names

import "testing"

func TestClosest(t *testing.T) {
	t.Parallel()
	vectorSearch := []string{"table", "embedding_column", "query_embedding", "limit", "where_clause", "schema"}
	record := []string{"agent_id", "workflow_id", "tokens_in", "tokens_out", "duration_ms", "cost_usd", "outcome", "error", "idempotency_key"}
	cases := []struct {
		s          string
		candidates []string
		want       string
	}{
		{"sqll", []string{"sql", "params"}, "sql"},
		{"param", []string{"sql", "params", "as"}, "params"},
		{"SQL", []string{"sql", "params"}, "sql"},
		{"workflowid", record, "workflow_id"},
		{"tokens", record, "tokens_in"},
		{"query_vector", vectorSearch, "query_embedding"},
		{"where", vectorSearch, "where_clause"},
		{"embedding", vectorSearch, "query_embedding"}, // the shorter of two containing it
		{"zz", []string{"sql", "params"}, ""},
		{"colour_scheme", vectorSearch, ""},
	}
	for _, c := range cases {
		if got := Closest(c.s, c.candidates); got != c.want {
			t.Errorf("Closest(%q) = %q, want %q", c.s, got, c.want)
		}
	}
}
