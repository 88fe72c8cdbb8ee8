package mcp_test

import (
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestArgumentsInOneVoice: every tool, whether the SDK decodes its arguments (typed) or cairn
// does (query, vector_search, …), says which argument is wrong, the name it probably meant, and
// the arguments it takes.
func TestArgumentsInOneVoice(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	cases := []struct {
		tool  string
		args  map[string]any
		wants []string
	}{
		{"vector_search", map[string]any{"table": "entities", "embedding_column": "embedding", "query_vector": []any{0.1}},
			[]string{`unknown argument "query_vector" (did you mean "query_embedding"?)`, "vector_search takes table, embedding_column, query_embedding and optionally limit, where_clause, schema"}},
		{"agent_record_execution", map[string]any{"agent_id": "a", "tokens": 5, "tokens_out": 1, "duration_ms": 1, "outcome": "success"},
			[]string{`unknown argument "tokens" (did you mean "tokens_in"?)`, "agent_record_execution takes agent_id, tokens_in, tokens_out, duration_ms, outcome and optionally"}},
		{"workflow_get", map[string]any{}, []string{`missing argument "workflow_id"`, "workflow_get takes workflow_id"}},
		{"agent_list", map[string]any{"limit": 2.5}, []string{`argument "limit" must be a whole number, not the number 2.5`}},
		{"agent_list", map[string]any{"limit": "10"}, []string{`argument "limit" must be a whole number, not the string "10"`}},
		{"transaction", map[string]any{"statements": []any{map[string]any{"sql": "SELECT 1", "param": []any{}}}},
			[]string{`unknown argument "param" in statements[0] (did you mean "params"?)`, "statements[0] takes sql and optionally params, as"}},
		{"transaction", map[string]any{"statements": []any{"SELECT 1"}}, []string{`argument "statements[0]" must be an object, not the string "SELECT 1"`}},
		{"knowledge_add_episode", map[string]any{"content": "x", "entities": []any{map[string]any{"nam": "y"}}},
			[]string{`unknown argument "nam" in entities[0] (did you mean "name"?)`}},
		{"server_info", map[string]any{"verbose": true}, []string{`unknown argument "verbose"`, "server_info takes no arguments"}},
		{"workflow_get", map[string]any{"workflow_id": nil}, []string{`argument "workflow_id" must be a string, not null`}},
	}
	for _, c := range cases {
		fails(t, cs, c.tool, c.args, c.wants...)
	}

	// An optional argument sent as null is one not sent: many clients send every parameter.
	ok(t, cs, "list_tables", map[string]any{"schema": nil, "exact": nil})
	ok(t, cs, "query", map[string]any{"sql": "SELECT 1", "params": nil})
	ok(t, cs, "agent_list", map[string]any{"state": nil, "template": nil, "limit": nil})
	ok(t, cs, "workflow_list", map[string]any{"status": nil})
}
