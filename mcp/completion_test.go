package mcp_test

import (
	"context"
	"slices"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// complete asks cairn to complete one argument of a reference.
func complete(t *testing.T, cs *sdk.ClientSession, ref *sdk.CompleteReference, arg, value string, context map[string]string) []string {
	t.Helper()
	p := &sdk.CompleteParams{Ref: ref, Argument: sdk.CompleteParamsArgument{Name: arg, Value: value}}
	if context != nil {
		p.Context = &sdk.CompleteContext{Arguments: context}
	}
	res, err := cs.Complete(t.Context(), p)
	if err != nil {
		t.Fatalf("complete %s %s=%q: %v", ref.URI+ref.Name, arg, value, err)
	}
	return res.Completion.Values
}

var (
	tableRef    = &sdk.CompleteReference{Type: "ref/resource", URI: "cairn://tables/{schema}/{table}"}
	workflowRef = &sdk.CompleteReference{Type: "ref/resource", URI: "cairn://workflows/{id}"}
	exploreRef  = &sdk.CompleteReference{Type: "ref/prompt", Name: "explore_database"}
)

// TestCompletion: what a client offers as the user types a resource URI or a prompt argument
// comes from the database, starts with what was typed, and is at most 100 values.
func TestCompletion(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA sales; CREATE TABLE sales.orders (id int); CREATE TABLE sales.order_lines (id int);
		INSERT INTO workflows (id, name) SELECT 'bulk-' || lpad(g::text, 3, '0'), 'bulk' FROM generate_series(1, 150) g;
		INSERT INTO workflows (id, name) VALUES ('thread:42/a', 'odd id')`); err != nil {
		t.Fatal(err)
	}
	cs := stdioClient(t, db)
	if cs.InitializeResult().Capabilities.Completions == nil {
		t.Fatal("completions are not advertised")
	}
	cases := []struct {
		name    string
		ref     *sdk.CompleteReference
		arg     string
		value   string
		context map[string]string
		want    []string
	}{
		{"schema", tableRef, "schema", "sal", nil, []string{"sales"}},
		{"table in the schema given", tableRef, "table", "order", map[string]string{"schema": "sales"}, []string{"order_lines", "orders"}},
		{"table in public by default", tableRef, "table", "workflow_s", nil, []string{"workflow_steps"}},
		{"no such schema", tableRef, "table", "", map[string]string{"schema": "nope"}, []string{}},
		{"workflow id as stored", workflowRef, "id", "thread:", nil, []string{"thread:42/a"}},
		{"prompt focus", exploreRef, "focus", "agent_e", nil, []string{"agent_executions"}},
		{"argument without suggestions", &sdk.CompleteReference{Type: "ref/prompt", Name: "diagnose_slow_query"}, "sql", "SEL", nil, []string{}},
		{"unknown prompt", &sdk.CompleteReference{Type: "ref/prompt", Name: "nope"}, "x", "", nil, []string{}},
		{"invalid UTF-8", tableRef, "schema", "\xff", nil, []string{}},
	}
	for _, c := range cases {
		if got := complete(t, cs, c.ref, c.arg, c.value, c.context); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q → %q, want %q", c.name, c.value, got, c.want)
		}
	}

	res, err := cs.Complete(ctx, &sdk.CompleteParams{Ref: workflowRef, Argument: sdk.CompleteParamsArgument{Name: "id", Value: "bulk-"}})
	if err != nil {
		t.Fatal(err)
	}
	if c := res.Completion; len(c.Values) != 100 || !c.HasMore || c.Values[0] != "bulk-001" || c.Values[99] != "bulk-100" {
		t.Errorf("150 matching workflows: %d values (%q … ), hasMore %v; want the first 100 and hasMore", len(c.Values), c.Values[:1], c.HasMore)
	}
}

// TestCompletionPermissions: a role is offered only what it could read as the resource it
// completes.
func TestCompletionPermissions(t *testing.T) {
	t.Parallel()
	db, file := permDB(t, "")
	if _, err := db.Pool.Exec(context.Background(), `INSERT INTO workflows (id, name) VALUES ('wf-1', 'x')`); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		role                       string
		tables, schemas, workflows []string
	}{
		// reader may not read public.secrets (the view over it is its own name) nor list the
		// private schema.
		{"reader", []string{"secret_view"}, []string{"public"}, []string{"wf-1"}},
		{"cautious", []string{}, []string{"public"}, []string{}},
		{"admin", []string{"secret_view", "secrets"}, []string{"private", "public"}, []string{"wf-1"}},
		{"narrow", []string{}, []string{}, []string{}},
	}
	for _, c := range cases {
		t.Run(c.role, func(t *testing.T) {
			cs := stdioClient(t, db, "--permissions", file, "--role", c.role)
			if got := complete(t, cs, tableRef, "table", "secret", nil); !slices.Equal(got, c.tables) {
				t.Errorf("tables: %q, want %q", got, c.tables)
			}
			if got := complete(t, cs, tableRef, "schema", "p", nil); !slices.Equal(got, c.schemas) {
				t.Errorf("schemas: %q, want %q", got, c.schemas)
			}
			if got := complete(t, cs, workflowRef, "id", "wf", nil); !slices.Equal(got, c.workflows) {
				t.Errorf("workflows: %q, want %q", got, c.workflows)
			}
		})
	}
}
