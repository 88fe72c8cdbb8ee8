package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os/user"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// The policy — roles, what each may do, the check of a statement — is internal/permissions': a
// Set checks, a Resolver qualifies names against the catalog. This file applies it to MCP, in
// three places:
//
//   - a receiving middleware sees every tools/call: it works out the caller (user and role from
//     the bearer token, else --role, else the file's default_role), checks the tool itself
//     (toolsets, tools, tools_deny, and the operations it can perform), and puts the caller in the
//     context; it also checks resources/read and resources/subscribe as the tools they mirror,
//     and trims tools/list to what the role may call;
//   - the typed and raw handler wrappers call permitArgs with the decoded arguments: the tables
//     named by describe_table, vector_search (and its where_clause), insert_vector, …, and the
//     domain tables a checkpoint, agents or knowledge tool reads or writes;
//   - sqlexec calls the statement check the middleware put in the context for every statement
//     of query, execute and transaction, after parsing and before anything runs: the
//     statement's operation and every relation and function it reaches, with unqualified names
//     resolved against the database's search path (permissions.Resolver).
//
// With no permissions file every check passes; the middleware still runs for the audit log.

// toolPerm is what a tool can do, for permissions and the audit log.
type toolPerm struct {
	toolset string
	// readOnly is the tool's ReadOnlyHint: calls of the other tools are audited.
	readOnly bool
	// ops are the operations the tool can perform; a role needs one of them to call it at all.
	ops []permissions.Operation
	// reads and writes are the domain tables a tool reads or writes, unqualified: cairn's own,
	// resolved against the search path once. The event log (events, event_streams,
	// event_idempotency) is among them for every domain write; River's job tables are not.
	reads, writes []string
}

var (
	opRead      = []permissions.Operation{permissions.Read}
	opWrite     = []permissions.Operation{permissions.Write}
	opWriteDDL  = []permissions.Operation{permissions.Write, permissions.DDL}
	eventTables = []string{"events", "event_streams", "event_idempotency"}
	cpTables    = []string{"workflows", "workflow_checkpoints", "checkpoint_blobs", "checkpoint_writes"}
	statsTables = []string{"agent_stats_hourly", "agent_stats_daily", "agent_stats_agent_hourly"}
)

func reads(ts string, tables ...string) toolPerm {
	return toolPerm{toolset: ts, readOnly: true, ops: opRead, reads: tables}
}

func writes(ts string, tables ...string) toolPerm {
	return toolPerm{toolset: ts, ops: opWrite, writes: tables}
}

func with(a []string, b ...string) []string { return slices.Concat(a, b) }

// toolPerms lists every tool cairn serves. A tool missing here is refused whenever a
// permissions file is in use (TestToolPermsCoverEveryTool keeps it complete and its readOnly
// true to the tools' annotations).
var toolPerms = map[string]toolPerm{
	// generic: SQL is checked statement by statement, named tables by permitArgs.
	"query":              reads("generic"),
	"execute":            {toolset: "generic", ops: opWriteDDL},
	"transaction":        {toolset: "generic", ops: opWriteDDL},
	"list_schemas":       reads("generic"),
	"list_tables":        reads("generic"),
	"describe_table":     reads("generic"),
	"get_indexes":        reads("generic"),
	"get_foreign_keys":   reads("generic"),
	"find_relationships": reads("generic"),
	"vector_search":      reads("generic"),
	"insert_vector":      {toolset: "generic", ops: opWrite},
	"server_info":        reads("generic"),
	"db_identity":        reads("generic"),

	"workflow_start":        writes("checkpoint", with(eventTables, "workflows")...),
	"checkpoint_save":       writes("checkpoint", with(eventTables, with(cpTables, "workflow_steps")...)...),
	"checkpoint_load":       reads("checkpoint", cpTables...),
	"checkpoint_list":       reads("checkpoint", cpTables...),
	"checkpoint_put_writes": writes("checkpoint", with(eventTables, "workflows", "workflow_checkpoints", "checkpoint_writes")...),
	"workflow_interrupt":    writes("checkpoint", with(eventTables, "workflows")...),
	"workflow_resume":       writes("checkpoint", with(eventTables, "workflows")...),
	"workflow_complete":     writes("checkpoint", with(eventTables, "workflows")...),
	"workflow_fail":         writes("checkpoint", with(eventTables, "workflows")...),
	"workflow_get":          reads("checkpoint", "workflows", "workflow_checkpoints"),
	"workflow_list":         reads("checkpoint", "workflows"),
	"workflow_history":      reads("checkpoint", "events"),
	"workflow_fork":         writes("checkpoint", with(eventTables, cpTables...)...),
	"workflow_delete":       writes("checkpoint", with(eventTables, with(cpTables, "workflow_steps")...)...),

	"agent_register":         writes("agents", with(eventTables, "agents")...),
	"agent_update":           writes("agents", with(eventTables, "agents")...),
	"agent_get":              reads("agents", "agents"),
	"agent_list":             reads("agents", "agents"),
	"agent_record_execution": writes("agents", with(eventTables, with(statsTables, "agents", "agent_executions")...)...),
	"agent_metrics":          reads("agents", statsTables...),

	"knowledge_search":        reads("knowledge", "entities", "episodes", "knowledge_models"),
	"knowledge_add_episode":   writes("knowledge", "episodes", "episode_mentions", "entities"),
	"knowledge_upsert_entity": writes("knowledge", "entities"),
	"knowledge_relate":        writes("knowledge", "relations", "entities"),
	"knowledge_get":           reads("knowledge", "entities", "episodes", "relations", "episode_mentions"),
	"knowledge_neighbors":     reads("knowledge", "entities", "relations"),
	"knowledge_status":        reads("knowledge", "entities", "episodes", "relations", "knowledge_models", "knowledge_reindex"),
}

// KnownTools maps every tool cairn can serve to its toolset, for permissions.Load to check a
// permissions file's names against.
func KnownTools() permissions.Tools {
	out := make(permissions.Tools, len(toolPerms))
	for name, tp := range toolPerms {
		out[name] = tp.toolset
	}
	return out
}

// access is a Server's permissions and audit log.
type access struct {
	set       *permissions.Set // nil: everything is allowed
	role      string           // --role: the role of callers that bring none
	transport string           // the configured transport, for callers without HTTP headers
	audit     bool             // --audit-events
	pool      *pgxpool.Pool
	log       *slog.Logger
	resolver  *permissions.Resolver

	redactMu sync.Mutex
	redacted map[string]redaction // statement text → its loggable form
}

func newAccess(cfg *config.Config, set *permissions.Set, pool *pgxpool.Pool, log *slog.Logger) *access {
	return &access{set: set, role: cfg.Role, transport: cfg.Transport, audit: cfg.AuditEvents, pool: pool, log: log,
		resolver: permissions.NewResolver(pool), redacted: map[string]redaction{}}
}

// caller is who makes a call.
type caller struct {
	user      string // the token's user; "local:<os user>" over stdio; "anonymous" otherwise
	auth      string // how the user authenticated: auth.MethodToken, auth.MethodJWT, or ""
	issuer    string // the JWT's issuer
	role      string // "" when none could be found (with a permissions file every call is refused)
	transport string // stdio, http or sse
}

// localUser is the operating-system user running cairn: who a stdio caller is.
var localUser = sync.OnceValue(func() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "local:" + u.Username
	}
	return "local"
})

func (a *access) callerOf(ctx context.Context, req sdk.Request) caller {
	var ti *sdkauth.TokenInfo
	extra := req.GetExtra()
	if extra != nil {
		ti = extra.TokenInfo
	}
	if ti == nil {
		// The SSE transport passes no Extra; its session runs under the authenticated GET.
		ti = sdkauth.TokenInfoFromContext(ctx)
	}
	id := auth.FromTokenInfo(ti)
	c := caller{user: id.User, auth: id.Method, issuer: id.Issuer, role: id.Role, transport: a.transport}
	switch {
	case extra != nil && extra.Header != nil:
		c.transport = config.TransportHTTP
	case a.transport != config.TransportStdio:
		c.transport = config.TransportSSE
	}
	if c.user == "" {
		c.user = "anonymous"
		if c.transport == config.TransportStdio {
			c.user = localUser()
		}
	}
	if c.role == "" {
		c.role = a.role
	}
	if c.role == "" && a.set != nil {
		c.role = a.set.DefaultRole()
	}
	return c
}

// callState is one tool call in flight: who makes it and the statements it ran, for the audit.
type callState struct {
	caller caller
	tool   string

	mu    sync.Mutex
	stmts []*sqlguard.Statement
}

func (c *callState) addStatement(st *sqlguard.Statement) {
	c.mu.Lock()
	c.stmts = append(c.stmts, st)
	c.mu.Unlock()
}

func (c *callState) statements() []*sqlguard.Statement {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.stmts)
}

type callKey struct{}

func callFrom(ctx context.Context) *callState {
	c, _ := ctx.Value(callKey{}).(*callState)
	return c
}

// middleware applies permissions to every request that reaches data and writes the audit log.
func (a *access) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		switch r := req.(type) {
		case *sdk.CallToolRequest:
			if r.Params != nil {
				return a.toolCall(ctx, next, method, r)
			}
		case *sdk.ListToolsRequest:
			res, err := next(ctx, method, req)
			if lt, ok := res.(*sdk.ListToolsResult); ok && err == nil && a.set != nil {
				a.trimTools(a.callerOf(ctx, req), lt)
			}
			return res, err
		case *sdk.ReadResourceRequest:
			if r.Params != nil {
				if err := a.permitResource(ctx, a.callerOf(ctx, req), r.Params.URI); err != nil {
					return nil, err
				}
			}
		case *sdk.SubscribeRequest:
			if r.Params != nil {
				if err := a.permitResource(ctx, a.callerOf(ctx, req), r.Params.URI); err != nil {
					return nil, err
				}
			}
		}
		return next(ctx, method, req)
	}
}

func (a *access) toolCall(ctx context.Context, next sdk.MethodHandler, method string, req *sdk.CallToolRequest) (sdk.Result, error) {
	start := time.Now()
	name := req.Params.Name
	tp, known := toolPerms[name]
	call := &callState{caller: a.callerOf(ctx, req), tool: name}
	ctx = context.WithValue(ctx, callKey{}, call)
	ctx = sqlexec.WithStatementCheck(ctx, func(ctx context.Context, st *sqlguard.Statement) error {
		call.addStatement(st)
		return a.checkStatement(ctx, call, st)
	})
	var res sdk.Result
	var err error
	if known && a.set != nil {
		if derr := a.set.CheckTool(call.caller.role, name, tp.ops...); derr != nil {
			res = toolError(derr)
		}
	}
	if res == nil {
		res, err = next(ctx, method, req)
	}
	if known && !tp.readOnly {
		a.auditCall(ctx, call, res, err, time.Since(start))
	}
	return res, err
}

// trimTools leaves in a tool list only the tools the caller's role may call (granted, not
// denied, and with an operation the role has), so that its model is not offered (and does not
// spend tokens on) tools it cannot use. Without a usable role the list is left whole: each call
// then says what is missing.
func (a *access) trimTools(c caller, lt *sdk.ListToolsResult) {
	if !a.set.HasRole(c.role) {
		return
	}
	kept := make([]*sdk.Tool, 0, len(lt.Tools))
	for _, t := range lt.Tools {
		if tp, known := toolPerms[t.Name]; known && a.set.CheckTool(c.role, t.Name, tp.ops...) == nil {
			kept = append(kept, t)
		}
	}
	lt.Tools = kept
}

// permitResource checks a resource read or subscription as the tool it mirrors.
func (a *access) permitResource(ctx context.Context, c caller, uri string) error {
	if a.set == nil {
		return nil
	}
	switch {
	case uri == "cairn://tables":
		return a.set.Check(c.role, "list_tables", &permissions.Statement{Op: permissions.Read, Schemas: []string{"public"}})
	case strings.HasPrefix(uri, tableURIPrefix):
		parts := strings.Split(strings.TrimPrefix(uri, tableURIPrefix), "/")
		if len(parts) != 2 {
			return nil // not found, whoever asks
		}
		schema, err1 := url.PathUnescape(parts[0])
		table, err2 := url.PathUnescape(parts[1])
		if err1 != nil || err2 != nil || schema == "" || table == "" {
			return nil
		}
		return a.set.CheckTables(c.role, "describe_table", permissions.Read, permissions.Table{Schema: schema, Name: table, Op: permissions.Read})
	case strings.HasPrefix(uri, workflowURIPrefix):
		return a.permitDomain(ctx, c.role, "workflow_get", toolPerms["workflow_get"])
	}
	return nil
}

// permitArgs checks the arguments of a tool call against the caller's role: the tables a tool
// names or works on. The typed and raw handler wrappers call it with the decoded arguments, so
// it sees exactly what the handler will use.
func (s *Server) permitArgs(ctx context.Context, tool string, in any) error {
	a := s.access
	if a == nil || a.set == nil {
		return nil
	}
	call := callFrom(ctx)
	if call == nil {
		return errors.New("internal error: a tool ran without its caller, so permissions cannot be checked; the call is refused")
	}
	role := call.caller.role
	tp, ok := toolPerms[tool]
	if !ok {
		return a.set.CheckTool(role, tool) // refused: the table does not know it
	}
	switch v := in.(type) {
	case TableArgs:
		return a.permitTable(ctx, role, tool, v.Schema, v.Table, permissions.Read)
	case ListTablesArgs:
		schema := v.Schema
		if schema == "" {
			schema = "public"
		}
		return a.set.Check(role, tool, &permissions.Statement{Op: permissions.Read, Schemas: []string{schema}})
	case *VectorSearchArgs:
		return a.permitVectorSearch(ctx, role, v)
	case *InsertVectorArgs:
		return a.permitTable(ctx, role, tool, v.Schema, v.Table, permissions.Write)
	}
	return a.permitDomain(ctx, role, tool, tp)
}

// permitTable checks one table named by a tool's arguments.
func (a *access) permitTable(ctx context.Context, role, tool, schema, table string, op permissions.Operation) error {
	schema, table = splitQualified(schema, table)
	if table == "" {
		return nil // the tool says what is missing
	}
	tables, err := a.resolver.Named(ctx, schema, table, op)
	if err != nil {
		return err
	}
	return a.set.CheckTables(role, tool, op, tables...)
}

func (a *access) permitVectorSearch(ctx context.Context, role string, v *VectorSearchArgs) error {
	schema, table := splitQualified(v.Schema, v.Table)
	if table == "" {
		return nil
	}
	tables, err := a.resolver.Named(ctx, schema, table, permissions.Read)
	if err != nil {
		return err
	}
	st := &permissions.Statement{What: "vector_search", Op: permissions.Read, Tables: tables}
	if strings.TrimSpace(v.WhereClause) != "" {
		// The clause may hold subqueries and function calls. If it does not parse as one
		// expression the tool refuses it before anything runs, so there is nothing to check.
		if parsed, err := sqlguard.Parse("SELECT 1 WHERE " + v.WhereClause + "\n"); err == nil {
			fp := parsed.Footprint
			for i := range fp.Accesses {
				fp.Accesses[i].Via = strings.TrimPrefix(fp.Accesses[i].Via+" in where_clause", " in ")
			}
			for i := range fp.Functions {
				fp.Functions[i].Via = strings.TrimPrefix(fp.Functions[i].Via+" in where_clause", " in ")
			}
			clause, err := a.resolver.Statement(ctx, fp)
			if err != nil {
				return err
			}
			st.Tables = append(st.Tables, clause.Tables...)
			st.Functions = clause.Functions
		}
	}
	return a.set.Check(role, "vector_search", st)
}

// permitDomain checks the domain tables a checkpoint, agents or knowledge tool works on.
func (a *access) permitDomain(ctx context.Context, role, tool string, tp toolPerm) error {
	if len(tp.reads) == 0 && len(tp.writes) == 0 {
		return nil
	}
	var tables []permissions.Table
	add := func(names []string, op permissions.Operation) error {
		for _, n := range names {
			schemas, err := a.resolver.Domain(ctx, n)
			if err != nil {
				return err
			}
			for _, sc := range schemas {
				tables = append(tables, permissions.Table{Schema: sc, Name: n, Op: op})
			}
		}
		return nil
	}
	if err := add(tp.reads, permissions.Read); err != nil {
		return err
	}
	if err := add(tp.writes, permissions.Write); err != nil {
		return err
	}
	op := permissions.Read
	if len(tp.writes) > 0 {
		op = permissions.Write
	}
	return a.set.CheckTables(role, tool, op, tables...)
}

// checkStatement is the statement check sqlexec runs for query, execute and transaction.
func (a *access) checkStatement(ctx context.Context, call *callState, st *sqlguard.Statement) error {
	if a.set == nil {
		return nil
	}
	ps, err := a.resolver.Statement(ctx, st.Footprint)
	if err != nil {
		return err
	}
	ps.What = st.Command
	return a.set.Check(call.caller.role, call.tool, ps)
}

// LoadPermissions loads the permissions file the configuration names (nil without one) against
// cairn's tools, and checks that cfg.Role is one of its roles: a bad file stops cairn before it
// connects, with every problem listed.
func LoadPermissions(cfg *config.Config) (*permissions.Set, error) {
	if cfg.PermissionsFile == "" {
		return nil, nil
	}
	set, err := permissions.Load(cfg.PermissionsFile, KnownTools())
	if err != nil {
		return nil, err
	}
	if cfg.Role != "" && !set.HasRole(cfg.Role) {
		return nil, fmt.Errorf("--role %q is not a role of the permissions file %s (roles: %s)", cfg.Role, cfg.PermissionsFile, strings.Join(set.Roles(), ", "))
	}
	return set, nil
}
