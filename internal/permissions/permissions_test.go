package permissions

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/internal/callerr"
)

var testTools = Tools{
	"query": "generic", "execute": "generic", "transaction": "generic", "describe_table": "generic",
	"list_tables": "generic", "insert_vector": "generic",
	"workflow_get": "checkpoint", "checkpoint_save": "checkpoint",
	"knowledge_search": "knowledge",
}

const example = `
# The roles of the example in the package documentation.
default_role: reader
roles:
  reader:
    description: reads public tables but not the secrets
    toolsets: [generic, knowledge]
    tools: [workflow_get]
    tools_deny: [execute, transaction]
    operations: [read]
    tables: ["public.*", "pg_catalog.pg_class"]
    tables_deny: ["public.secrets", "public.secret_*"]
    functions: ["public.safe_*"]
  writer:
    toolsets: ["*"]
    operations: [read, write]
    tables: ["public.*"]
    write_tables: ["public.workflows", "public.agents"]
  admin: {toolsets: ["*"], operations: [read, write, ddl], tables: ["*"], functions: ["*"]}
  nobody: {tools: [], operations: [], tables: []}
  operator:
    toolsets: ["*"]
    operations: [read, write]
    tables: ["pg_catalog.*", "pg_catalog.pg_stat_statements"]
    functions: ["pg_catalog.pg_t*", "pg_catalog.pg_terminate_backend"]
`

func mustParse(t *testing.T, text string) *Set {
	t.Helper()
	s, err := Parse([]byte(text), "/etc/cairn/permissions.yaml", testTools)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

func TestLoadExample(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "permissions.yaml")
	if err := os.WriteFile(file, []byte(example), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := Load(file, testTools)
	if err != nil {
		t.Fatal(err)
	}
	if s.Source() != file || s.DefaultRole() != "reader" || !s.HasRole("admin") || s.HasRole("root") {
		t.Errorf("Source %q DefaultRole %q", s.Source(), s.DefaultRole())
	}
	if got := strings.Join(s.Roles(), ","); got != "admin,nobody,operator,reader,writer" {
		t.Errorf("Roles = %s", got)
	}
	if _, err := Load(filepath.Join(dir, "missing.yaml"), testTools); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// TestParseErrors checks that each bad file is refused with an error naming the line, the role
// and the field, and saying what to write instead.
func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
	}{
		{"empty", "", []string{"is empty", "roles:"}},
		{"comments only", "# nothing\n", []string{"is empty"}},
		{"not a mapping", "- a\n- b\n", []string{":1:", "want a mapping", "found a list"}},
		{"yaml syntax", "roles:\n  reader: [\n", []string{"permissions.yaml", "line"}},
		{"bare star", "roles:\n  r: {toolsets: [*], operations: [read], tables: [\"*\"]}\n", []string{"quote it"}},
		{"unknown top key", "rolez: {}\n", []string{":1:", `unknown key "rolez"`, `did you mean "roles"`, "roles is missing"}},
		{"roles empty", "roles: {}\n", []string{":1:", "roles is empty"}},
		{"roles a list", "roles: [reader]\n", []string{":1:", "found a list"}},
		{"role not a mapping", "roles:\n  reader: yes\n", []string{":2:", `role "reader"`, `found "yes"`}},
		{"missing fields", "roles:\n  reader:\n    description: x\n", []string{":2:", `role "reader": operations is missing`, "tables is missing", "neither toolsets nor tools"}},
		{"unknown field", "roles:\n  reader:\n    toolsets: [generic]\n    operations: [read]\n    tables: [\"*\"]\n    table_deny: [x.y]\n",
			[]string{":6:", `role "reader": unknown field "table_deny"`, `did you mean "tables_deny"`}},
		{"unknown operation", "roles:\n  r:\n    toolsets: [generic]\n    operations: [read, wirte]\n    tables: [\"*\"]\n",
			[]string{":4:", `role "r": operations: unknown operation "wirte"`, `did you mean "write"`}},
		{"unknown toolset", "roles:\n  r:\n    toolsets: [generics]\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":3:", `role "r": toolsets: unknown toolset "generics"`, `did you mean "generic"`}},
		{"unknown tool", "roles:\n  r:\n    tools: [exeucte]\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":3:", `role "r": tools: unknown tool "exeucte"`, `did you mean "execute"`}},
		{"unknown denied tool", "roles:\n  r:\n    toolsets: [generic]\n    tools_deny: [drop_everything]\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":4:", `tools_deny: unknown tool "drop_everything"`}},
		{"table without schema", "roles:\n  r:\n    toolsets: [generic]\n    operations: [read]\n    tables: [workflows]\n",
			[]string{":5:", `role "r": tables: "workflows" is not schema.name`, `"public.*"`}},
		{"bad glob", "roles:\n  r:\n    toolsets: [generic]\n    operations: [read]\n    tables: [\"public.[a\"]\n",
			[]string{":5:", "not a valid glob"}},
		{"bad function", "roles:\n  r:\n    toolsets: [generic]\n    operations: [read]\n    tables: [\"*\"]\n    functions: [leak]\n",
			[]string{":6:", `role "r": functions: "leak" is not schema.name`}},
		{"scalar instead of list", "roles:\n  r:\n    toolsets: generic\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":3:", "toolsets must be a list", `["generic"]`}},
		{"nested list entry", "roles:\n  r:\n    toolsets: [[generic]]\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":3:", "each entry must be a non-empty name"}},
		{"write_tables without write", "roles:\n  r:\n    toolsets: [generic]\n    operations: [read]\n    tables: [\"*\"]\n    write_tables: [\"public.x\"]\n",
			[]string{":6:", "write_tables is set but operations has neither write nor ddl"}},
		{"duplicate role", "roles:\n  r: {toolsets: [generic], operations: [read], tables: [\"*\"]}\n  r: {toolsets: [generic], operations: [read], tables: [\"*\"]}\n",
			[]string{":3:"}},
		{"duplicate field", "roles:\n  r:\n    toolsets: [generic]\n    toolsets: [knowledge]\n    operations: [read]\n    tables: [\"*\"]\n",
			[]string{":4:"}},
		{"unknown default role", "default_role: reeder\nroles:\n  reader: {toolsets: [generic], operations: [read], tables: [\"*\"]}\n",
			[]string{":1:", `default_role "reeder" is not one of the roles (reader)`, `did you mean "reader"`}},
		{"role name with space", "roles:\n  \"my role\": {toolsets: [generic], operations: [read], tables: [\"*\"]}\n",
			[]string{":2:", `role name "my role"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.text), "/etc/cairn/permissions.yaml", testTools)
			if err == nil {
				t.Fatalf("accepted:\n%s", tc.text)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if !strings.Contains(err.Error(), "permissions file /etc/cairn/permissions.yaml") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestParseAccepts(t *testing.T) {
	for _, text := range []string{
		// Null lists, an anchored list used twice, flow and block styles.
		"roles:\n  r:\n    toolsets:\n    tools: [query]\n    operations: &ops [read]\n    tables: [\"*\"]\n  s:\n    toolsets: [\"*\"]\n    operations: *ops\n    tables: []\n",
		"roles:\n  r:\n    toolsets:\n      - generic\n      - checkpoint\n    operations:\n      - read\n    tables:\n      - \"public.*\"\n      - 'other.t?'\n",
	} {
		if _, err := Parse([]byte(text), "p.yaml", testTools); err != nil {
			t.Errorf("%s\n%v", text, err)
		}
	}
}

// denied checks err is a *Denied, marked as the caller's to fix, whose message holds every want.
func denied(t *testing.T, what string, err error, missing string, want ...string) {
	t.Helper()
	var d *Denied
	if !errors.As(err, &d) {
		t.Errorf("%s: got %v, want *Denied", what, err)
		return
	}
	if !callerr.Is(err) {
		t.Errorf("%s: Denied is not a callerr", what)
	}
	if d.Missing != missing {
		t.Errorf("%s: Missing = %q, want %q", what, d.Missing, missing)
	}
	for _, w := range append(want, "(permissions file /etc/cairn/permissions.yaml)") {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: %q does not mention %q", what, err, w)
		}
	}
}

func tbl(schema, name string, op Operation, via string) Table {
	return Table{Schema: schema, Name: name, Op: op, Via: via}
}

func TestCheck(t *testing.T) {
	s := mustParse(t, example)
	type tc struct {
		role, tool string
		st         Statement
		missing    string // "" = allowed
		want       []string
	}
	read := func(tables ...Table) Statement { return Statement{What: "SELECT", Op: Read, Tables: tables} }
	tests := []tc{
		// Tools.
		{"reader", "query", read(tbl("public", "workflows", Read, "")), "", nil},
		{"reader", "workflow_get", Statement{Op: Read, Tables: []Table{tbl("public", "workflows", Read, "")}}, "", nil},
		{"reader", "checkpoint_save", Statement{Op: Write}, "tool checkpoint_save", []string{`role "reader" may not call checkpoint_save`, "toolsets (generic, knowledge)", "toolset checkpoint"}},
		{"reader", "execute", Statement{}, "tool execute", []string{"tools_deny lists it"}},
		{"nobody", "query", Statement{}, "tool query", []string{"toolsets (none)"}},
		// Operations.
		{"reader", "insert_vector", Statement{Op: Write, Tables: []Table{tbl("public", "entities", Write, "")}}, "operation write",
			[]string{`role "reader" may not write: insert_vector needs operation write`}},
		{"reader", "query", Statement{What: "INSERT", Op: Write}, "operation write", []string{"INSERT needs operation write"}},
		{"writer", "query", Statement{What: "CREATE TABLE", Op: DDL}, "operation ddl", []string{`role "writer" may not change the schema (ddl): CREATE TABLE needs operation ddl`}},
		{"admin", "query", Statement{What: "DROP TABLE", Op: DDL, Tables: []Table{tbl("secret", "x", DDL, "")}}, "", nil},
		// Tables.
		{"reader", "query", read(tbl("public", "secrets", Read, "")), "table public.secrets",
			[]string{`role "reader" may not read table public.secrets: tables_deny lists public.secrets`}},
		{"reader", "query", read(tbl("public", "workflows", Read, "a JOIN"), tbl("public", "secrets", Read, "a JOIN")), "table public.secrets",
			[]string{"table public.secrets (reached through a JOIN)"}},
		{"reader", "query", read(tbl("public", "secret_keys", Read, `a CTE "s"`)), "table public.secret_keys",
			[]string{`(reached through a CTE "s")`, "tables_deny lists public.secret_*"}},
		{"reader", "query", read(tbl("private", "notes", Read, "")), "table private.notes",
			[]string{"may not read table private.notes", "not in the role's tables (public.*, pg_catalog.pg_class)"}},
		{"reader", "query", read(tbl("pg_catalog", "pg_class", Read, "")), "", nil},
		{"reader", "query", read(tbl("pg_catalog", "pg_authid", Read, "")), "table pg_catalog.pg_authid", nil},
		{"writer", "execute", Statement{What: "INSERT", Op: Write, Tables: []Table{tbl("public", "workflows", Write, "")}}, "", nil},
		{"writer", "execute", Statement{What: "INSERT", Op: Write, Tables: []Table{tbl("public", "agents", Write, ""), tbl("public", "secrets", Read, "INSERT … SELECT")}}, "", nil},
		{"writer", "execute", Statement{What: "DELETE", Op: Write, Tables: []Table{tbl("public", "entities", Write, "")}}, "table public.entities",
			[]string{`role "writer" may not write table public.entities: it is not in the role's write_tables (public.workflows, public.agents)`}},
		{"writer", "execute", Statement{What: "INSERT", Op: Write, Tables: []Table{tbl("other", "workflows", Write, "")}}, "table other.workflows",
			[]string{"not in the role's tables (public.*)"}},
		{"writer", "execute", Statement{What: "UPDATE", Op: Write, Tables: []Table{tbl("public", "workflows", DDL, "")}}, "operation ddl",
			[]string{"may not create, alter or drop table public.workflows: that needs operation ddl"}},
		// Functions.
		{"reader", "query", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "lower", Builtin: true}}}, "", nil},
		{"reader", "query", Statement{Op: Read, Functions: []Function{{Schema: "public", Name: "leak", Via: "a subquery"}}}, "function public.leak",
			[]string{`role "reader" may not call function public.leak (reached through a subquery)`, "functions list"}},
		{"reader", "query", Statement{Op: Read, Functions: []Function{{Schema: "public", Name: "safe_hash"}}}, "", nil},
		{"reader", "query", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "query_to_xml", Builtin: true, Restricted: "reads data named in its arguments"}}}, "function pg_catalog.query_to_xml",
			[]string{"it reads data named in its arguments", `only if its functions list names it ("pg_catalog.query_to_xml")`}},
		{"admin", "query", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "query_to_xml", Builtin: true, Restricted: "reads"}, {Schema: "x", Name: "y"}}}, "", nil},
		{"writer", "execute", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "pg_terminate_backend", Builtin: true, Restricted: "signals another server process"}}}, "function pg_catalog.pg_terminate_backend",
			[]string{`role "writer" may not call function pg_catalog.pg_terminate_backend: it signals another server process`}},
		// A wildcard does not grant a restricted built-in; naming it does.
		{"operator", "execute", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "pg_cancel_backend", Builtin: true, Restricted: "signals"}}}, "function pg_catalog.pg_cancel_backend", nil},
		{"operator", "execute", Statement{Op: Read, Functions: []Function{{Schema: "pg_catalog", Name: "pg_terminate_backend", Builtin: true, Restricted: "signals"}}}, "", nil},
		// Relations that show other sessions' statements or credentials need their own name.
		{"operator", "query", read(tbl("pg_catalog", "pg_stat_activity", Read, "")), "table pg_catalog.pg_stat_activity",
			[]string{"shows other sessions' statements", `only a tables entry naming it ("pg_catalog.pg_stat_activity")`}},
		{"operator", "query", read(tbl("pg_catalog", "pg_stat_statements", Read, "")), "", nil},
		{"operator", "query", read(tbl("pg_catalog", "pg_class", Read, "")), "", nil},
		{"admin", "query", read(tbl("pg_catalog", "pg_stat_activity", Read, "")), "", nil},
		// Schemas listed.
		{"reader", "list_tables", Statement{Op: Read, Schemas: []string{"public"}}, "", nil},
		{"reader", "list_tables", Statement{Op: Read, Schemas: []string{"private"}}, "schema private", []string{"may not list schema private"}},
		// Roles.
		{"", "query", read(), "role", []string{"no role", "--role", "default_role"}},
		{"root", "query", read(), "role", []string{`role "root" is not defined`, "admin, nobody, operator, reader, writer"}},
	}
	for _, c := range tests {
		err := s.Check(c.role, c.tool, &c.st)
		what := c.role + " " + c.tool + " " + c.st.What
		if c.missing == "" {
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
			continue
		}
		denied(t, what, err, c.missing, c.want...)
	}
}

func TestCheckTool(t *testing.T) {
	s := mustParse(t, example)
	if err := s.CheckTool("writer", "execute", Write, DDL); err != nil {
		t.Error(err)
	}
	denied(t, "reader execute", s.CheckTool("reader", "execute", Write, DDL), "tool execute")
	denied(t, "reader insert_vector", s.CheckTool("reader", "insert_vector", Write), "operation write",
		`role "reader" may not write: insert_vector needs operation write`)
	ro := mustParse(t, "roles:\n  r: {toolsets: [generic], operations: [read], tables: [\"*\"]}\n")
	denied(t, "read-only execute", ro.CheckTool("r", "execute", Write, DDL), "operation write", "execute needs operation write or ddl")
	if err := s.CheckTool("reader", "workflow_get", Read); err != nil {
		t.Error(err)
	}
	denied(t, "unknown tool", s.CheckTool("admin", "drop_everything"), "tool drop_everything", "does not know the tool")
	if err := s.CheckTables("admin", "checkpoint_save", Write, tbl("public", "workflows", Write, "")); err != nil {
		t.Error(err)
	}
	denied(t, "reader checkpoint tables", s.CheckTables("reader", "workflow_get", Read, tbl("public", "secrets", Read, "")), "table public.secrets")
}
