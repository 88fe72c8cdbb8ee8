package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

func TestIntrospectionTools(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	if _, err := db.Pool.Exec(context.Background(), `CREATE SCHEMA ops; CREATE TABLE ops.runs (id int PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	cs := stdioClient(t, db)

	schemas := ok(t, cs, "list_schemas", map[string]any{})
	names := map[string]bool{}
	for _, s := range schemas["schemas"].([]any) {
		names[s.(map[string]any)["name"].(string)] = true
	}
	if !names["public"] || !names["ops"] {
		t.Errorf("list_schemas = %v", schemas)
	}

	tables := ok(t, cs, "list_tables", map[string]any{})
	byName := map[string]map[string]any{}
	for _, x := range tables["tables"].([]any) {
		m := x.(map[string]any)
		byName[m["name"].(string)] = m
	}
	for _, n := range []string{"workflows", "workflow_steps", "agents", "cairn_migrations"} {
		if byName[n] == nil {
			t.Errorf("list_tables lacks %s: %v", n, tables)
		}
	}
	if m := byName["workflows"]; m != nil && (fmt.Sprint(m["row_count"]) != "0" || m["row_count_exact"] != true) {
		t.Errorf("workflows entry = %v", m)
	}
	ops := ok(t, cs, "list_tables", map[string]any{"schema": "ops"})
	if len(ops["tables"].([]any)) != 1 {
		t.Errorf("ops tables = %v", ops)
	}

	// describe_table has the seed's shape.
	d := ok(t, cs, "describe_table", map[string]any{"table": "workflows"})
	if d["table"] != "workflows" {
		t.Errorf("table = %v", d["table"])
	}
	cols := d["columns"].([]any)
	first := cols[0].(map[string]any)
	if first["name"] != "id" || first["type"] != "text" || first["nullable"] != false || first["default"] != "gen_random_uuid()::text" || first["is_primary_key"] != true {
		t.Errorf("id column = %v", first)
	}
	second := cols[1].(map[string]any)
	if second["name"] != "name" || second["type"] != "text" || second["nullable"] != false || second["default"] != "''::text" {
		t.Errorf("name column = %v", second)
	}
	idx, _ := json.Marshal(d["indexes"])
	if !json.Valid(idx) || !contains(string(idx), `"idx_workflows_status"`) || !contains(string(idx), `["status"]`) {
		t.Errorf("indexes = %s", idx)
	}
	// schema.table works as the table argument, and the schema argument too.
	ok(t, cs, "describe_table", map[string]any{"table": "ops.runs"})
	ok(t, cs, "describe_table", map[string]any{"table": "runs", "schema": "ops"})

	gi := ok(t, cs, "get_indexes", map[string]any{"table": "workflows"})
	if len(gi["indexes"].([]any)) < 3 { // pkey, status, the seed's idx_workflows_status
		t.Errorf("get_indexes = %v", gi)
	}
	fk := ok(t, cs, "get_foreign_keys", map[string]any{"table": "workflow_steps"})
	fks := fk["foreign_keys"].([]any)
	if len(fks) != 1 || fks[0].(map[string]any)["referenced_table"] != "workflows" || fks[0].(map[string]any)["on_delete"] != "CASCADE" {
		t.Errorf("get_foreign_keys = %v", fk)
	}
	rel := ok(t, cs, "find_relationships", map[string]any{"table": "workflows"})
	referencing := map[string]bool{}
	for _, fk := range rel["referenced_by"].([]any) {
		referencing[fk.(map[string]any)["table"].(string)] = true
	}
	if !referencing["workflow_steps"] || !referencing["workflow_checkpoints"] || referencing["workflows"] {
		t.Errorf("find_relationships = %v", rel)
	}
}

func TestResourcesAndPrompts(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	setupSeed(t, db)
	cs := stdioClient(t, db)
	ctx := context.Background()

	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tm := range tmpls.ResourceTemplates {
		found = found || tm.URITemplate == "cairn://tables/{schema}/{table}"
	}
	if !found {
		t.Fatalf("no table template among %+v", tmpls.ResourceTemplates)
	}
	res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "cairn://tables/public/workflows"})
	if err != nil {
		t.Fatal(err)
	}
	var table map[string]any
	if err := json.Unmarshal([]byte(res.Contents[0].Text), &table); err != nil || table["table"] != "workflows" {
		t.Fatalf("resource = %s (%v)", res.Contents[0].Text, err)
	}
	if _, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "cairn://tables/public/nope"}); err == nil {
		t.Error("reading a missing table's resource should fail")
	}
	list, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: "cairn://tables"})
	if err != nil || !contains(list.Contents[0].Text, "cairn://tables/public/workflows") {
		t.Fatalf("tables resource = %v, %v", list, err)
	}

	prompts, err := cs.ListPrompts(ctx, nil)
	if err != nil || len(prompts.Prompts) != 2 {
		t.Fatalf("prompts = %+v, %v", prompts, err)
	}
	p, err := cs.GetPrompt(ctx, &sdk.GetPromptParams{Name: "diagnose_slow_query", Arguments: map[string]string{"sql": "SELECT * FROM workflows"}})
	if err != nil || !contains(p.Messages[0].Content.(*sdk.TextContent).Text, "SELECT * FROM workflows") {
		t.Fatalf("prompt = %+v, %v", p, err)
	}
}

func TestToolListHasSchemasAndTrueAnnotations(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	readOnly := map[string]bool{"query": true, "list_schemas": true, "list_tables": true, "describe_table": true, "get_indexes": true,
		"get_foreign_keys": true, "find_relationships": true, "vector_search": true, "server_info": true, "db_identity": true,
		"execute": false, "transaction": false, "insert_vector": false}
	seen := map[string]bool{}
	for _, tool := range res.Tools {
		seen[tool.Name] = true
		want, known := readOnly[tool.Name]
		if !known {
			continue
		}
		if tool.Annotations == nil || tool.Annotations.ReadOnlyHint != want {
			t.Errorf("%s: readOnlyHint should be %t: %+v", tool.Name, want, tool.Annotations)
		}
		if !want && (tool.Annotations.DestructiveHint == nil) {
			t.Errorf("%s: a write tool should say whether it is destructive", tool.Name)
		}
		if tool.Description == "" || tool.InputSchema == nil {
			t.Errorf("%s: missing description or input schema", tool.Name)
		}
	}
	for name := range readOnly {
		if !seen[name] {
			t.Errorf("tool %s is not listed", name)
		}
	}
}

func contains(s, sub string) bool {
	return len(sub) == 0 || (len(s) >= len(sub) && indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}
