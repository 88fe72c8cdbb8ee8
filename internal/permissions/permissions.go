// Package permissions decides what a caller's role may do: which tools it may call, which
// operations (read, write, ddl) it may perform, which relations its statements may touch and
// which user-defined functions they may call. Roles come from a YAML file:
//
//	default_role: reader            # callers that bring no role (stdio); optional
//	roles:
//	  reader:
//	    toolsets: [generic, knowledge] # or "*" for every toolset
//	    tools: [workflow_get]          # single tools on top of the toolsets; "*" for all
//	    tools_deny: [execute]          # never these, whatever else says
//	    operations: [read]             # read, write, ddl
//	    tables: ["public.*"]           # schema.table globs statements may touch
//	    tables_deny: ["public.secrets"]
//	    functions: []                  # user-defined functions statements may call
//	  writer:
//	    toolsets: ["*"]
//	    operations: [read, write]
//	    tables: ["public.*"]
//	    write_tables: ["public.workflows", "public.agents"]  # of those, what it may write; default all of tables
//	  admin: {toolsets: ["*"], operations: [read, write, ddl], tables: ["*"], functions: ["*"]}
//
// The package knows nothing of MCP or SQL: the front end works out what a call does (a
// Statement) and asks Check.
package permissions

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Operation is what a statement or tool does to the database.
type Operation string

// The operations a role may be given.
const (
	Read  Operation = "read"  // read rows
	Write Operation = "write" // change rows
	DDL   Operation = "ddl"   // change the schema, administer the database, run DO blocks
)

var operations = []Operation{Read, Write, DDL}

// Tools maps each tool name to its toolset; the file's tool and toolset names are checked
// against it, and toolsets grant its tools.
type Tools map[string]string

// Table is one relation a call touches, with its schema resolved.
type Table struct {
	Schema, Name string
	Op           Operation // Read, Write (rows), or DDL (the relation itself)
	// Via says how the statement reaches it (e.g. `a JOIN`, `a CTE "s"`); "" when named directly.
	Via string
}

func (t Table) String() string { return t.Schema + "." + t.Name }

// Function is one function a statement calls, with its schema resolved.
type Function struct {
	Schema, Name string
	Via          string
	// Builtin is true for PostgreSQL's own functions (pg_catalog), which are allowed unless
	// Restricted.
	Builtin bool
	// Restricted says why a built-in needs an explicit permission, completing "it …": it reads
	// data it is given by name or as SQL text (query_to_xml, table_to_xml, ts_stat, lo_get),
	// administers the server (pg_terminate_backend, pg_reload_conf), or writes what no table
	// permission covers (setval, large objects, notifications on cairn's own channels). A
	// role may call it only if its functions list names it, or is "*".
	Restricted string
}

func (f Function) String() string { return f.Schema + "." + f.Name }

// Statement is what one call, or one statement of it, needs: an operation, the relations it
// touches and the functions it calls, every name resolved to its schema.
type Statement struct {
	// What names the statement in messages, e.g. "INSERT" or "statements[2] (DELETE)"; "" names
	// the tool instead.
	What      string
	Op        Operation
	Tables    []Table
	Functions []Function
	// Schemas are schemas whose contents the call lists (list_tables).
	Schemas []string
}

// Set is a loaded permissions file. It is immutable and safe for concurrent use.
type Set struct {
	source      string
	defaultRole string
	roles       map[string]*role
	tools       Tools
}

// role is one role of the file.
type role struct {
	name        string
	toolsets    []string
	tools       []string
	toolsDeny   []string
	ops         []Operation
	tables      []pattern
	tablesDeny  []pattern
	writeTables []pattern // nil: the same as tables
	functions   []pattern
}

// pattern is a schema.name glob, or "*" for every name.
type pattern struct {
	text         string
	schema, name string // path.Match globs
}

func parsePattern(s string) (pattern, error) {
	if s == "*" {
		return pattern{text: s, schema: "*", name: "*"}, nil
	}
	schema, name, ok := strings.Cut(s, ".")
	if !ok || schema == "" || name == "" {
		return pattern{}, fmt.Errorf("%q is not schema.name: write e.g. \"public.workflows\", \"public.*\" or \"*\"", s)
	}
	for _, p := range []string{schema, name} {
		if _, err := path.Match(p, ""); err != nil {
			return pattern{}, fmt.Errorf("%q is not a valid glob (use * and ?, [a-z] for ranges)", s)
		}
	}
	return pattern{text: s, schema: schema, name: name}, nil
}

func (p pattern) match(schema, name string) bool {
	ok1, _ := path.Match(p.schema, schema)
	ok2, _ := path.Match(p.name, name)
	return ok1 && ok2
}

// sensitive are the relations (in any schema) that show other sessions' statements, credentials
// or samples of any table's values: a wildcard such as "pg_catalog.*" does not grant them, by
// what they show.
var sensitive = map[string]string{
	"pg_stat_activity":           "shows other sessions' statements with their literal values",
	"pg_stat_statements":         "shows other sessions' statements",
	"pg_authid":                  "holds password hashes",
	"pg_shadow":                  "holds password hashes",
	"pg_user_mapping":            "holds passwords for foreign servers",
	"pg_user_mappings":           "holds passwords for foreign servers",
	"pg_statistic":               "holds samples of every table's values",
	"pg_stats":                   "shows samples of tables' values",
	"pg_statistic_ext_data":      "holds samples of every table's values",
	"pg_stats_ext":               "shows samples of tables' values",
	"pg_stats_ext_exprs":         "shows samples of tables' values",
	"pg_stat_replication":        "shows other sessions' client addresses",
	"pg_stat_wal_receiver":       "shows the replication connection string",
	"pg_stat_subscription":       "shows replication state",
	"pg_prepared_xacts":          "shows other sessions' prepared transactions",
	"pg_stat_statements_info":    "shows other sessions' statement statistics",
	"pg_stat_ssl":                "shows other sessions' client certificates",
	"pg_stat_gssapi":             "shows other sessions' principals",
	"pg_hba_file_rules":          "shows the server's authentication rules",
	"pg_ident_file_mappings":     "shows the server's user mappings",
	"pg_file_settings":           "shows the server's configuration files",
	"pg_backend_memory_contexts": "shows server memory",
}

// matchingExactly returns the first pattern that is "*" or names schema.name without a wildcard
// in the name, or nil.
func matchingExactly(ps []pattern, schema, name string) *pattern {
	for i := range ps {
		p := &ps[i]
		if p.text == "*" || (p.name == name && p.match(schema, name)) {
			return p
		}
	}
	return nil
}

// matching returns the first pattern matching schema.name, or nil.
func matching(ps []pattern, schema, name string) *pattern {
	for i := range ps {
		if ps[i].match(schema, name) {
			return &ps[i]
		}
	}
	return nil
}

// Source is the file the set was loaded from.
func (s *Set) Source() string { return s.source }

// DefaultRole is the role of callers that bring none, "" when the file sets none.
func (s *Set) DefaultRole() string { return s.defaultRole }

// HasRole reports whether the file defines the role.
func (s *Set) HasRole(name string) bool {
	_, ok := s.roles[name]
	return ok
}

// Roles lists the file's roles, sorted.
func (s *Set) Roles() []string {
	names := make([]string, 0, len(s.roles))
	for n := range s.roles {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Denied is a call the caller's role does not permit. Its message names the role and the
// missing permission, so the caller (or whoever gives out roles) knows what to ask for.
type Denied struct {
	Role string
	// Missing names what the role lacks, e.g. "tool execute", "operation write",
	// "table public.secrets", "function public.leak", or "role" when the caller has none.
	Missing string
	msg     string
}

func (e *Denied) Error() string { return e.msg }

// CallerCanFix marks Denied as the caller's to fix (internal/callerr): a tool error, not a fault.
func (*Denied) CallerCanFix() {}

func (s *Set) deny(role, missing, format string, args ...any) *Denied {
	return &Denied{Role: role, Missing: missing, msg: fmt.Sprintf(format, args...) + " (permissions file " + s.source + ")"}
}

// NoRole is the error for a caller without a role when the file has no default_role.
func (s *Set) NoRole() error {
	return s.deny("", "role", "the caller has no role and the permissions file sets no default_role, so every call is refused: "+
		"start cairn with --role (CAIRN_ROLE) for stdio callers, give the caller's token a role, or set default_role")
}

// lookup returns the role or a Denied naming the unknown role.
func (s *Set) lookup(name string) (*role, error) {
	if name == "" {
		return nil, s.NoRole()
	}
	r, ok := s.roles[name]
	if !ok {
		return nil, s.deny(name, "role", "role %q is not defined in the permissions file (roles: %s), so every call is refused", name, strings.Join(s.Roles(), ", "))
	}
	return r, nil
}

// CheckTool decides whether the role may call the tool at all: the tool must be granted by the
// role's toolsets or tools and not listed in tools_deny, and the role must have one of ops (the
// operations the tool can perform; none for tools that read only the catalog).
func (s *Set) CheckTool(roleName, tool string, ops ...Operation) error {
	r, err := s.lookup(roleName)
	if err != nil {
		return err
	}
	if _, known := s.tools[tool]; !known {
		return s.deny(r.name, "tool "+tool, "role %q may not call %s: cairn's permission table does not know the tool, so it is refused while a permissions file is in use", r.name, tool)
	}
	if slices.Contains(r.toolsDeny, tool) || slices.Contains(r.toolsDeny, "*") {
		return s.deny(r.name, "tool "+tool, "role %q may not call %s: tools_deny lists it", r.name, tool)
	}
	if !r.grantsTool(tool, s.tools[tool]) {
		return s.deny(r.name, "tool "+tool, "role %q may not call %s: neither its toolsets (%s) nor its tools list it (toolset %s)",
			r.name, tool, listOrNone(r.toolsets), s.tools[tool])
	}
	if len(ops) > 0 && !slices.ContainsFunc(ops, r.has) {
		return s.deny(r.name, "operation "+string(ops[0]), "role %q may not %s: %s needs operation %s",
			r.name, verb(ops[0]), tool, joinOps(ops))
	}
	return nil
}

func (r *role) grantsTool(tool, toolset string) bool {
	return slices.Contains(r.tools, tool) || slices.Contains(r.tools, "*") ||
		slices.Contains(r.toolsets, "*") || (toolset != "" && slices.Contains(r.toolsets, toolset))
}

func (r *role) has(op Operation) bool { return slices.Contains(r.ops, op) }

// Check decides whether the role may have the tool run st: the tool (CheckTool), the
// statement's operation, every table for its operation, every schema listed and every
// function called. The first thing missing is returned as a *Denied.
func (s *Set) Check(roleName, tool string, st *Statement) error {
	r, err := s.lookup(roleName)
	if err != nil {
		return err
	}
	if err := s.CheckTool(roleName, tool); err != nil {
		return err
	}
	what := st.What
	if what == "" {
		what = tool
	}
	if st.Op != "" && !r.has(st.Op) {
		return s.deny(r.name, "operation "+string(st.Op), "role %q may not %s: %s needs operation %s", r.name, verb(st.Op), what, st.Op)
	}
	for _, t := range st.Tables {
		if err := s.checkTable(r, t); err != nil {
			return err
		}
	}
	for _, sc := range st.Schemas {
		if !slices.ContainsFunc(r.tables, func(p pattern) bool { ok, _ := path.Match(p.schema, sc); return ok }) {
			return s.deny(r.name, "schema "+sc, "role %q may not list schema %s: none of its tables (%s) is in it", r.name, sc, patternList(r.tables))
		}
	}
	for _, f := range st.Functions {
		if f.Builtin && f.Restricted == "" {
			continue
		}
		if f.Restricted != "" {
			if matchingExactly(r.functions, f.Schema, f.Name) == nil {
				return s.deny(r.name, "function "+f.String(), "role %q may not call function %s%s: it %s, so a role may call it only if its functions list names it (%q) or is \"*\"",
					r.name, f, via(f.Via), f.Restricted, f.String())
			}
			continue
		}
		if p := matching(r.functions, f.Schema, f.Name); p != nil {
			continue
		}
		return s.deny(r.name, "function "+f.String(), "role %q may not call function %s%s: a function's body can read and write any table, so a role may call only the user-defined functions its functions list names",
			r.name, f, via(f.Via))
	}
	return nil
}

// CheckTables is Check for a call that touches tables outside any statement (domain tools,
// describe_table, insert_vector): op and tables only.
func (s *Set) CheckTables(roleName, tool string, op Operation, tables ...Table) error {
	return s.Check(roleName, tool, &Statement{Op: op, Tables: tables})
}

func (s *Set) checkTable(r *role, t Table) error {
	if t.Op != "" && !r.has(t.Op) {
		return s.deny(r.name, "operation "+string(t.Op), "role %q may not %s table %s%s: that needs operation %s", r.name, tableVerb(t.Op), t, via(t.Via), t.Op)
	}
	if p := matching(r.tablesDeny, t.Schema, t.Name); p != nil {
		return s.deny(r.name, "table "+t.String(), "role %q may not %s table %s%s: tables_deny lists %s", r.name, tableVerb(t.Op), t, via(t.Via), p.text)
	}
	if why, ok := sensitive[t.Name]; ok {
		if matchingExactly(r.tables, t.Schema, t.Name) == nil {
			return s.deny(r.name, "table "+t.String(), "role %q may not %s table %s%s: it %s, so only a tables entry naming it (%q) or \"*\" grants it, not a wildcard",
				r.name, tableVerb(t.Op), t, via(t.Via), why, t.String())
		}
	} else if matching(r.tables, t.Schema, t.Name) == nil {
		return s.deny(r.name, "table "+t.String(), "role %q may not %s table %s%s: it is not in the role's tables (%s)", r.name, tableVerb(t.Op), t, via(t.Via), patternList(r.tables))
	}
	if (t.Op == Write || t.Op == DDL) && r.writeTables != nil && matching(r.writeTables, t.Schema, t.Name) == nil {
		return s.deny(r.name, "table "+t.String(), "role %q may not %s table %s%s: it is not in the role's write_tables (%s)", r.name, tableVerb(t.Op), t, via(t.Via), patternList(r.writeTables))
	}
	return nil
}

func via(v string) string {
	if v == "" {
		return ""
	}
	return " (reached through " + v + ")"
}

// verb completes "may not …" for an operation.
func verb(op Operation) string {
	switch op {
	case Write:
		return "write"
	case DDL:
		return "change the schema (ddl)"
	}
	return "read"
}

// tableVerb completes "may not … table x".
func tableVerb(op Operation) string {
	switch op {
	case Write:
		return "write"
	case DDL:
		return "create, alter or drop"
	}
	return "read"
}

func joinOps(ops []Operation) string {
	s := make([]string, len(ops))
	for i, o := range ops {
		s[i] = string(o)
	}
	return strings.Join(s, " or ")
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func patternList(ps []pattern) string {
	if len(ps) == 0 {
		return "none"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.text
	}
	return strings.Join(s, ", ")
}
