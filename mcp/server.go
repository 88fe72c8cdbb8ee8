// Package mcp adapts cairn to the Model Context Protocol: it registers tools, resources and
// prompts on a go-sdk server and serves it over stdio, SSE and Streamable HTTP. Tools validate
// their arguments and report every problem the caller can fix as a tool error (isError) that
// says what was wrong and how to fix it.
package mcp

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/logging"
	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// Options are what the MCP front end serves.
type Options struct {
	Config *config.Config
	Pool   *pgxpool.Pool
	Runner *sqlexec.Runner
	// Checkpoints serves the checkpoint toolset; default a checkpoint.Store on Pool.
	Checkpoints *checkpoint.Store
	// Agents serves the agents toolset; default an agents.Store on Pool.
	Agents *agents.Store
	// Knowledge serves the knowledge toolset; default a knowledge.Store on Pool without an
	// embedder or job queue (keyword search; rows wait for a worker's sweep to be embedded).
	Knowledge *knowledge.Store
	Logger    *slog.Logger // default slog.Default()
	Version   string       // cairn's version, reported by server_info
	// AgentTotals serves per-template agent totals at /metrics; default the agents store's
	// totals when the agents toolset is on, none otherwise.
	AgentTotals AgentTotals
	// Permissions are the roles callers act under (permissions.go); nil lets every caller do
	// everything. Config.Role and Config.AuditEvents complete them.
	Permissions *permissions.Set
	// Auth authenticates callers of the HTTP transports; default the verifier Config describes
	// (static tokens, JWTs), none when it describes none.
	Auth *auth.Verifier
	// Admission bounds each caller's tool calls in flight and open sessions (admission.go).
	Admission AdmissionOptions
	// System is the pool of the server's own work that tool calls must not be able to starve:
	// /readyz and the LISTEN connection of workflow subscriptions. Default Pool.
	System *pgxpool.Pool
	// PoolWaits, when set, is the histogram of the pools' acquire waits, served at /metrics.
	PoolWaits *db.PoolWaits
	// About is what GET / tells a person about this server.
	About About
	// Pending builds a server that answers initialize and the lists before Runner and
	// Knowledge exist; calls wait for Started (start.go).
	Pending bool
}

// Server is cairn's MCP server. One Server serves any number of sessions over any transport.
type Server struct {
	opts Options
	cfg  *config.Config
	pool *pgxpool.Pool
	run  *sqlexec.Runner
	log  *slog.Logger
	srv  *sdk.Server
	// checkpoints is the checkpoint API.
	checkpoints *checkpoint.Store
	// agents is the agents API.
	agents *agents.Store
	// knowledge is the knowledge graph API.
	knowledge *knowledge.Store
	// calls counts requests in flight, for a graceful shutdown.
	calls *inflight
	// watch serves resource subscriptions to workflows; nil without the checkpoint toolset.
	watch *workflowWatch
	// metrics is what /metrics serves.
	metrics *metrics
	// bufs holds the buffers results are encoded into, reused across calls.
	bufs *sync.Pool
	// access applies the permissions and writes the audit log (permissions.go, audit.go).
	access *access
	// admit bounds what each caller may hold at once (admission.go).
	admit *admission
	// system is Options.System.
	system *pgxpool.Pool
	// args holds each tool's input schema for the argument check (args.go); written by New only.
	args map[string]argSpec
	// gate holds a pending server's calls until Started; nil when New had all it needs.
	gate *startGate
	// about is what GET / says; Started may replace it.
	about atomic.Pointer[About]
}

// instructions tell the client's model what the enabled toolsets are for.
func instructions(cfg *config.Config) string {
	s := "cairn keeps AI agents' workflow state, metrics and knowledge in PostgreSQL."
	if cfg.HasToolset("generic") {
		s += `
Generic SQL tools: query (read-only SELECT/EXPLAIN/SHOW), execute (one write or DDL statement), transaction (several statements, all or nothing).
Explore first: list_schemas, list_tables, describe_table, get_foreign_keys, find_relationships.
Always pass values as params ($1, $2, …) rather than writing them into the SQL text.`
	}
	if cfg.HasToolset("checkpoint") {
		s += `
Workflows: workflow_start, then checkpoint_save after each step (pass expected_version to fence out a second writer, idempotency_key for safe retries); checkpoint_load resumes; workflow_interrupt / workflow_resume for human decisions (workflow_list {"status": "interrupted"} is the inbox); workflow_fork for time travel; workflow_history for the events.`
	}
	if cfg.HasToolset("agents") {
		s += `
Agents: agent_register, agent_update as the agent's state changes, agent_record_execution after every run (tokens, duration, cost, outcome; idempotency_key for safe retries); agent_metrics for per-hour/day series (UTC) by template or agent.`
	}
	if cfg.HasToolset("knowledge") {
		s += `
Knowledge: before debugging, knowledge_search for the error (have we seen it, what fixed it?); knowledge_get and knowledge_neighbors follow what it finds. Afterwards record what happened with knowledge_add_episode (entities involved), and what fixed it with knowledge_relate (e.g. error fixed_by fix).`
	}
	return s
}

// New builds the server with the toolsets the configuration enables.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &Server{opts: opts, cfg: opts.Config, pool: opts.Pool, run: opts.Runner, log: opts.Logger, calls: newInflight(), bufs: newBufPool(),
		system: opts.System}
	if s.system == nil {
		s.system = opts.Pool
	}
	s.about.Store(&opts.About)
	if opts.Pending {
		s.gate = &startGate{done: make(chan struct{})}
	}
	sopts := &sdk.ServerOptions{
		Instructions: instructions(opts.Config),
		// The SDK logs every session's start and end at info, which for stateless HTTP is every
		// request.
		Logger: slog.New(logging.MinLevel{Handler: opts.Logger.Handler(), Min: slog.LevelWarn}),
	}
	sopts.CompletionHandler = s.complete
	if s.cfg.HasToolset("checkpoint") {
		s.enableWorkflowSubscriptions(sopts)
	}
	s.srv = sdk.NewServer(&sdk.Implementation{Name: "cairn", Title: "cairn", Version: opts.Version}, sopts)
	s.checkpoints = opts.Checkpoints
	if s.checkpoints == nil {
		s.checkpoints = checkpoint.New(opts.Pool)
	}
	s.agents = opts.Agents
	if s.agents == nil {
		s.agents = agents.New(opts.Pool)
	}
	s.knowledge = opts.Knowledge
	if s.knowledge == nil {
		s.knowledge = knowledge.New(opts.Pool, knowledge.Options{Logger: opts.Logger})
	}
	totals := opts.AgentTotals
	if totals == nil && s.cfg.HasToolset("agents") {
		totals = AgentTotalsFunc(func(ctx context.Context) ([]TemplateTotals, error) {
			ts, err := s.agents.Totals(ctx)
			out := make([]TemplateTotals, len(ts))
			for i, t := range ts {
				out[i] = TemplateTotals(t)
			}
			return out, err
		})
	}
	// Middleware added later wraps what was added before. Innermost, the wait for a pending
	// server's start; around it the argument check, so that a wrong argument is answered at once
	// even then, and what the permissions, the audit log and the metrics see of such a call is
	// the tool error it ends with.
	s.srv.AddReceivingMiddleware(s.waitForStart)
	s.srv.AddReceivingMiddleware(s.checkArguments)
	s.srv.AddReceivingMiddleware(s.calls.middleware)
	// Inside the metrics (a denial counts as a tool error) and whatever fills in the caller.
	s.access = newAccess(s.cfg, opts.Permissions, opts.Pool, opts.Logger)
	s.srv.AddReceivingMiddleware(s.access.middleware)
	s.admit = newAdmission(opts.Admission, s.cfg.PoolMax)
	s.srv.AddReceivingMiddleware(s.admit.middleware(s.access.callerOf))
	// Before the tools look: requests over SSE get the caller's TokenInfo in req.Extra too.
	s.srv.AddReceivingMiddleware(sseTokenInfo)
	// Every error on its way out gets a JSON-RPC code; a stateless HTTP session is offered only
	// what it can be sent.
	s.srv.AddReceivingMiddleware(protocolErrors(opts.Logger), truthfulCapabilities)
	// Added last, so outermost: its timing covers the other middleware too.
	src := MetricsSources{Pools: map[string]*pgxpool.Pool{}, Agents: totals}
	if opts.Pool != nil {
		src.Pools["tools"] = opts.Pool
		src.Jobs = jobsDepth(s.system)
		if s.cfg.HasToolset("knowledge") {
			src.Backlog = s.knowledge.Backlog // counts rows: any store on the pool will do
		}
	}
	if s.system != nil && s.system != opts.Pool {
		src.Pools["system"] = s.system
	}
	s.metrics = newMetrics(src, opts.Logger)
	s.metrics.reg.MustRegister(s.admit.collectors()...)
	if opts.PoolWaits != nil {
		s.metrics.reg.MustRegister(opts.PoolWaits.Collector())
	}
	s.srv.AddReceivingMiddleware(s.metrics.middleware)
	if s.cfg.HasToolset("generic") {
		s.addSQLTools()
		s.addCatalogTools()
		s.addVectorTools()
		s.addInfoTools()
		s.addResources()
		s.addPrompts()
	}
	if s.cfg.HasToolset("checkpoint") {
		s.addCheckpointTools()
		s.addWorkflowResources()
	}
	if s.cfg.HasToolset("agents") {
		s.addAgentTools()
	}
	if s.cfg.HasToolset("knowledge") {
		s.addKnowledgeTools()
	}
	return s
}

// Close stops the server's background work, the listener behind workflow subscriptions, and
// waits for it. Call it once the transports are done; later subscriptions are refused.
func (s *Server) Close() {
	if s.watch != nil {
		s.watch.close()
	}
}

// SDK returns the underlying go-sdk server, for transports and tests.
func (s *Server) SDK() *sdk.Server { return s.srv }

// ServeStdio serves one session over stdin/stdout until the client disconnects or ctx ends.
func (s *Server) ServeStdio(ctx context.Context) error {
	return s.srv.Run(ctx, &sdk.StdioTransport{})
}
