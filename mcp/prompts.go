package mcp

import (
	"context"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// addPrompts offers the common jobs as prompts a client can put in front of its model.
func (s *Server) addPrompts() {
	s.srv.AddPrompt(&sdk.Prompt{
		Name:        "explore_database",
		Title:       "Explore the database",
		Description: "Walk the schemas and tables, then summarise what the database holds and how the tables relate.",
		Arguments:   []*sdk.PromptArgument{{Name: "focus", Description: "optional topic to concentrate on, e.g. workflows or agents"}},
	}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		focus := req.Params.Arguments["focus"]
		text := `Explore this PostgreSQL database with the cairn tools and summarise it.
1. list_schemas, then list_tables for each schema that matters.
2. describe_table for the main tables; find_relationships to see how they join.
3. A few small query calls (with LIMIT) to see typical rows.
Report: what each main table holds, how the tables relate (the join columns), row counts, and anything odd (missing indexes on foreign keys, empty tables, very wide rows).`
		if focus != "" {
			text += "\nConcentrate on: " + focus + "."
		}
		return userPrompt("Explore the database", text), nil
	})
	s.srv.AddPrompt(&sdk.Prompt{
		Name:        "diagnose_slow_query",
		Title:       "Diagnose a slow query",
		Description: "Find out why a query is slow and what would make it fast.",
		Arguments:   []*sdk.PromptArgument{{Name: "sql", Description: "the slow SELECT", Required: true}},
	}, func(_ context.Context, req *sdk.GetPromptRequest) (*sdk.GetPromptResult, error) {
		sql := req.Params.Arguments["sql"]
		if sql == "" {
			return nil, invalidParams("argument sql is required: the slow SELECT statement")
		}
		text := fmt.Sprintf(`Diagnose why this query is slow:

%s

1. query with "EXPLAIN (ANALYZE, BUFFERS) " followed by the statement (it runs read-only).
2. describe_table / get_indexes for every table in the plan.
3. Look for sequential scans on big tables, row estimates far from actual rows, sorts or hashes spilling to disk, and nested loops over many rows.
Propose concrete fixes (an index with its CREATE INDEX statement, a rewrite, ANALYZE) and say what each would change in the plan. Do not run writes without asking.`, sql)
		return userPrompt("Diagnose a slow query", text), nil
	})
}

func userPrompt(desc, text string) *sdk.GetPromptResult {
	return &sdk.GetPromptResult{
		Description: desc,
		Messages:    []*sdk.PromptMessage{{Role: "user", Content: &sdk.TextContent{Text: text}}},
	}
}
