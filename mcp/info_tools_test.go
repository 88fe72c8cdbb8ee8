package mcp_test

import (
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

func TestServerInfoAndIdentity(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db, "--max-rows", "77", "--statement-timeout", "45s")
	info := ok(t, cs, "server_info", map[string]any{})
	if info["name"] != "cairn" || info["transport"] != "stdio" || info["read_only"] != false {
		t.Errorf("server_info = %v", info)
	}
	if !strings.HasPrefix(info["postgres_version"].(string), "1") || info["pgvector_version"] == "" {
		t.Errorf("versions: postgres %v pgvector %v", info["postgres_version"], info["pgvector_version"])
	}
	if info["statement_timeout"] != "45s" || info["max_rows"].(interface{ String() string }).String() != "77" {
		t.Errorf("settings = %v / %v", info["statement_timeout"], info["max_rows"])
	}
	if info["migration_version"].(interface{ String() string }).String() == "0" {
		t.Error("migration_version should be the applied schema version")
	}
	pool := info["pool"].(map[string]any)
	if pool["max"].(interface{ String() string }).String() != "10" {
		t.Errorf("pool = %v", pool)
	}

	id := ok(t, cs, "db_identity", map[string]any{})
	if id["database"] != db.Name || id["current_user"] == "" || id["ssl"] != false {
		t.Errorf("db_identity = %v", id)
	}
}
