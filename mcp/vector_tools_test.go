package mcp_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// A 3-dimension copy of the seed's entities table in a schema of its own (public.entities is
// cairn's knowledge graph, with 768 dimensions).
const entitiesSchema = `
CREATE SCHEMA lab;
CREATE TABLE lab.entities (
	id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
	name text NOT NULL,
	entity_type text NOT NULL,
	context text,
	embedding vector(3),
	created_at timestamptz NOT NULL DEFAULT now()
);`

func TestVectorSearchAndInsert(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	if _, err := db.Pool.Exec(context.Background(), entitiesSchema); err != nil {
		t.Fatal(err)
	}
	cs := stdioClient(t, db)

	// The seed's insert_vector call.
	d := ok(t, cs, "insert_vector", map[string]any{
		"table":            "lab.entities",
		"columns":          map[string]any{"name": "ModuleNotFoundError", "entity_type": "error", "context": "Dashboard startup"},
		"embedding_column": "embedding",
		"embedding":        []any{1, 0, 0},
	})
	key, _ := d["key"].(map[string]any)
	if key == nil || key["id"] == nil || d["table"] != "lab.entities" {
		t.Fatalf("insert_vector result = %v", d)
	}
	for i, e := range []struct {
		name, typ string
		vec       []any
	}{{"Timeout", "error", []any{0.9, 0.1, 0}}, {"nginx", "service", []any{1, 0.05, 0}}, {"disk full", "error", []any{0, 0, 1}}} {
		ok(t, cs, "insert_vector", map[string]any{"table": "lab.entities", "columns": map[string]any{"name": e.name, "entity_type": e.typ},
			"embedding_column": "embedding", "embedding": e.vec})
		_ = i
	}

	// The seed's vector_search call: nearest first, vectors left out, distance added.
	d = ok(t, cs, "vector_search", map[string]any{"table": "lab.entities", "embedding_column": "embedding",
		"query_embedding": []any{1, 0, 0}, "limit": 5, "where_clause": "entity_type = 'error'"})
	rs := rows(t, d)
	if len(rs) != 3 || rs[0]["name"] != "ModuleNotFoundError" || rs[1]["name"] != "Timeout" || rs[2]["name"] != "disk full" {
		t.Fatalf("vector_search rows = %v", rs)
	}
	if _, has := rs[0]["embedding"]; has {
		t.Error("vector columns should be left out")
	}
	if fmt.Sprint(rs[0]["distance"]) != "0" {
		t.Errorf("distance of identical vector = %v", rs[0]["distance"])
	}
	d = ok(t, cs, "vector_search", map[string]any{"table": "lab.entities", "embedding_column": "embedding", "query_embedding": []any{1, 0, 0}, "limit": 2})
	if rs := rows(t, d); len(rs) != 2 || rs[1]["name"] != "nginx" {
		t.Fatalf("unfiltered top 2 = %v", rs)
	}

	// Wrong dimensions name the expected ones; bad identifiers and clauses are refused.
	fails(t, cs, "vector_search", map[string]any{"table": "lab.entities", "embedding_column": "embedding", "query_embedding": []any{1, 0}}, "2 dimensions", "vector(3)")
	fails(t, cs, "insert_vector", map[string]any{"table": "lab.entities", "columns": map[string]any{"name": "x", "entity_type": "y"}, "embedding_column": "embedding", "embedding": []any{1, 0, 0, 0}}, "4 dimensions", "3-dimension")
	fails(t, cs, "vector_search", map[string]any{"table": "lab.entitys", "embedding_column": "embedding", "query_embedding": []any{1, 0, 0}}, "entities")
	fails(t, cs, "vector_search", map[string]any{"table": "lab.entities", "embedding_column": "embeding", "query_embedding": []any{1, 0, 0}}, "embeding")
	fails(t, cs, "insert_vector", map[string]any{"table": "lab.entities", "columns": map[string]any{"nam": "x"}, "embedding_column": "embedding", "embedding": []any{1, 0, 0}}, "nam")
	for _, clause := range []string{
		"true) UNION SELECT usename, passwd, null, null, null FROM pg_shadow --",
		"1=1; DROP TABLE entities",
		"true ORDER BY 1",
		"id IN (WITH d AS (DELETE FROM entities RETURNING id) SELECT id FROM d)",
		"set_config('search_path', 'x', false) IS NOT NULL",
	} {
		fails(t, cs, "vector_search", map[string]any{"table": "lab.entities", "embedding_column": "embedding", "query_embedding": []any{1, 0, 0}, "where_clause": clause}, "where_clause")
	}
	if got := scalar(t, cs, "SELECT count(*) FROM lab.entities"); got != "4" {
		t.Errorf("entities = %s", got)
	}
}
