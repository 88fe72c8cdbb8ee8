package mcp

import (
	"context"
	"net/url"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/sqlexec/catalog"
)

// completion/complete offers values for the variables of the resource templates — schema and
// table names for cairn://tables/{schema}/{table}, workflow ids for cairn://workflows/{id} —
// and for the explore_database prompt's focus (a table of the public schema). Values start with
// what the caller typed, come in name order, are at most maxCompletions, and are only those the
// caller's role could read as the resource they complete. A reference cairn has nothing to offer
// for (another prompt, an argument without suggestions) gets an empty list, not an error: the
// client may ask about any argument as the user types.

// maxCompletions is the most values one completion returns (the MCP specification's cap).
const maxCompletions = 100

// completionCandidates bounds how many names are read before the role's permissions filter
// them, so that a huge catalog costs a bounded read.
const completionCandidates = 1000

const (
	tableTemplate    = tableURIPrefix + "{schema}/{table}"
	workflowTemplate = workflowURIPrefix + "{id}"
)

func (s *Server) complete(ctx context.Context, req *sdk.CompleteRequest) (*sdk.CompleteResult, error) {
	p := req.Params
	if p == nil || p.Ref == nil {
		return nil, invalidParams("completion/complete needs a ref: {\"type\": \"ref/resource\", \"uri\": …} or {\"type\": \"ref/prompt\", \"name\": …}")
	}
	c := s.access.callerOf(ctx, req)
	arg, prefix := p.Argument.Name, p.Argument.Value
	var values []string
	var more bool
	var err error
	switch p.Ref.Type {
	case "ref/prompt":
		if p.Ref.Name == "explore_database" && arg == "focus" && s.cfg.HasToolset("generic") {
			values, more, err = s.completeTables(ctx, c, "public", prefix)
		}
	case "ref/resource":
		switch {
		case p.Ref.URI == tableTemplate && s.cfg.HasToolset("generic"):
			switch arg {
			case "schema":
				values, more, err = s.completeSchemas(ctx, c, prefix)
			case "table":
				schema := "public"
				if p.Context != nil && p.Context.Arguments["schema"] != "" {
					schema = p.Context.Arguments["schema"]
				}
				values, more, err = s.completeTables(ctx, c, schema, prefix)
			}
		case p.Ref.URI == workflowTemplate && s.cfg.HasToolset("checkpoint") && arg == "id":
			values, more, err = s.completeWorkflows(ctx, c, prefix)
		}
	default:
		return nil, invalidParams("ref.type %q: use ref/prompt or ref/resource", p.Ref.Type)
	}
	if err != nil {
		return nil, err
	}
	if values == nil {
		values = []string{}
	}
	res := &sdk.CompleteResult{Completion: sdk.CompletionResultDetails{Values: values, HasMore: more}}
	if !more {
		res.Completion.Total = len(values)
	}
	return res, nil
}

// completeSchemas offers the schemas the caller's role may list tables of.
func (s *Server) completeSchemas(ctx context.Context, c caller, prefix string) ([]string, bool, error) {
	names, err := catalog.SchemaNames(ctx, s.pool, prefix, completionCandidates)
	if err != nil {
		return nil, false, err
	}
	return permitted(names, func(schema string) bool {
		set := s.access.set
		return set == nil || set.Check(c.role, "list_tables", &permissions.Statement{Op: permissions.Read, Schemas: []string{schema}}) == nil
	})
}

// completeTables offers the tables of schema whose resource the caller's role may read.
func (s *Server) completeTables(ctx context.Context, c caller, schema, prefix string) ([]string, bool, error) {
	names, err := catalog.TableNames(ctx, s.pool, schema, prefix, completionCandidates)
	if err != nil {
		return nil, false, err
	}
	return permitted(names, func(table string) bool {
		uri := tableURIPrefix + url.PathEscape(schema) + "/" + url.PathEscape(table)
		return s.access.permitResource(ctx, c, uri) == nil
	})
}

// completeWorkflows offers workflow ids, if the caller's role may read workflows.
func (s *Server) completeWorkflows(ctx context.Context, c caller, prefix string) ([]string, bool, error) {
	if s.access.permitResource(ctx, c, workflowTemplate) != nil {
		return nil, false, nil
	}
	ids, err := s.checkpoints.WorkflowIDs(ctx, prefix, maxCompletions+1)
	if err != nil {
		return nil, false, err
	}
	if len(ids) > maxCompletions {
		return ids[:maxCompletions], true, nil
	}
	return ids, false, nil
}

// permitted keeps the names ok allows, at most maxCompletions of them, and reports whether
// there were more (or may be: the read stopped at completionCandidates).
func permitted(names []string, ok func(string) bool) ([]string, bool, error) {
	out := make([]string, 0, min(len(names), maxCompletions))
	for _, n := range names {
		if !ok(n) {
			continue
		}
		if len(out) == maxCompletions {
			return out, true, nil
		}
		out = append(out, n)
	}
	return out, len(names) == completionCandidates, nil
}
