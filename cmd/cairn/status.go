package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/rivertype"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/pgcluster"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/migrations"
)

// Exit codes of `cairn status`, a contract for scripts and health checks.
const (
	statusHealthy     = 0
	statusUnreachable = 1 // the database cannot be reached, or a query of the check failed
	statusDegraded    = 3 // reachable, but something needs the operator
)

// statusConnectTimeout bounds connecting when the settings name no connect_timeout: a health
// check that hangs on a black-holed host is worse than one that says "unreachable".
const statusConnectTimeout = 5 * time.Second

// interruptedShown is how many interrupted workflows the report lists.
const interruptedShown = 5

func statusCommand() *cli.Command {
	// Only the flags that choose the embedder: the batch, timeout and sweep settings of
	// serve/worker do not change which embedder that is.
	var embedChoice []cli.Flag
	for _, f := range embedFlags {
		if n := f.Names()[0]; n == "embedder" || n == "embed-model" || n == "ollama-host" {
			embedChoice = append(embedChoice, f)
		}
	}
	return &cli.Command{
		Name:  "status",
		Usage: "report the health of cairn's database, embedder and job queue (exit 0 healthy, 1 unreachable, 3 degraded)",
		Description: `Checks, without changing anything: whether the database answers and where it is, the
PostgreSQL and pgvector versions, cairn's and River's migrations, the embedder the --embedder
flags choose (as serve does; Ollama is probed within --probe-timeout) and the model of the
graph's vectors, the job queue, counts per domain, and the workflows waiting on a human.

It never migrates, and never starts the embedded cluster: with no database configured it
reports whether that cluster runs (` + "`cairn db start`" + ` starts it).

Exit codes:
   0  healthy
   1  the database is unreachable (or the embedded cluster is stopped), or a query failed
   2  bad flags or connection settings
   3  reachable but degraded: schema or River migrations behind (or newer than this cairn),
      pgvector missing, the embedder unreachable or unusable, discarded jobs, failed embeddings

--json prints one object, also when exiting 1 or 3; its keys are stable:
   healthy (bool), problems [{code, message}], warnings [string], checked_at, cairn_version
   database: reachable, target, error, embedded {data_dir, initialized, running} (only when no
     database is configured), postgres_version, pgvector ("" when not installed),
     pgvector_available, schema_version, schema_latest, schema_pending [int], river_pending [int],
     role (the role cairn connects as), superuser (a warning says so, except on the embedded cluster)
   embedder (null without the knowledge graph): requested, provider, model, dimensions, label,
     why (the embedder the flags choose), ollama [{host, model, ok, error}] (each Ollama model
     probed), column_dimensions, recorded {entity, episode} (the model each kind is embedded
     with, "" before its first vector), graph_model, graph_models [{kind, model, rows}],
     other_model_rows
   queue (null without River's tables): available, scheduled, pending, retryable, running,
     completed, cancelled, discarded, oldest_available_seconds, failing [{kind, state, jobs, last_error}]
   counts: workflows {status: n}, workflows_total, checkpoints, agents, executions, entities,
     episodes, relations, embeddings_pending, embeddings_failed (null where the tables are missing)
   interrupted: count, recent [{id, name, reason, interrupted_at}] (most recently updated first)
   embedder, queue, counts and interrupted are null when the database is unreachable.
Problem codes: database_unreachable, embedded_cluster_stopped, query_failed (exit 1);
schema_behind, schema_ahead, river_behind, pgvector_missing, embedder_unreachable,
embedder_misconfigured, jobs_discarded, embeddings_failed (exit 3).

Examples:
   cairn status
   cairn status --json | jq .queue
   cairn status --embedder ollama --probe-timeout 5s || echo "needs attention: $?"`,
		Flags: slices.Concat([]cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object (keys documented above) instead of the report"},
			&cli.DurationFlag{Name: "probe-timeout", Value: embed.DefaultProbeTimeout, Usage: "longest to wait for Ollama to answer"},
		}, embedChoice, dbFlags),
		Action: runStatus,
	}
}

// statusReport is what `cairn status --json` prints; its keys are documented in the command's
// help and are a contract for scripts.
type statusReport struct {
	Healthy      bool                 `json:"healthy"`
	Problems     []statusProblem      `json:"problems"`
	Warnings     []string             `json:"warnings"`
	CheckedAt    time.Time            `json:"checked_at"`
	CairnVersion string               `json:"cairn_version"`
	Database     databaseStatus       `json:"database"`
	Embedder     *embedderStatus      `json:"embedder"`
	Queue        *queueStatus         `json:"queue"`
	Counts       *countsStatus        `json:"counts"`
	Interrupted  *interruptedOverview `json:"interrupted"`
}

// statusProblem is something that makes the status non-zero; Code is stable, Message is for
// people.
type statusProblem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	fatal   bool   // exit statusUnreachable rather than statusDegraded
}

type databaseStatus struct {
	Reachable         bool            `json:"reachable"`
	Target            string          `json:"target,omitempty"`
	Error             string          `json:"error,omitempty"`
	Embedded          *embeddedStatus `json:"embedded,omitempty"`
	PostgresVersion   string          `json:"postgres_version,omitempty"`
	Pgvector          string          `json:"pgvector"`
	PgvectorAvailable string          `json:"pgvector_available"`
	SchemaVersion     int             `json:"schema_version"`
	SchemaLatest      int             `json:"schema_latest"`
	SchemaPending     []int           `json:"schema_pending"`
	RiverPending      []int           `json:"river_pending"`
	Role              string          `json:"role,omitempty"`
	Superuser         bool            `json:"superuser"`
}

type embeddedStatus struct {
	DataDir     string `json:"data_dir"`
	Initialized bool   `json:"initialized"`
	Running     bool   `json:"running"`
}

type embedderStatus struct {
	Requested        string                 `json:"requested"`
	Provider         string                 `json:"provider"`
	Model            string                 `json:"model"`
	Dimensions       int                    `json:"dimensions"`
	Label            string                 `json:"label"`
	Why              string                 `json:"why"`
	Ollama           []ollamaStatus         `json:"ollama"`
	ColumnDimensions int                    `json:"column_dimensions"`
	Recorded         map[string]string      `json:"recorded"`
	GraphModel       string                 `json:"graph_model"`
	GraphModels      []knowledge.ModelCount `json:"graph_models"`
	OtherModelRows   int64                  `json:"other_model_rows"`
}

type ollamaStatus struct {
	Host  string `json:"host"`
	Model string `json:"model"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

type queueStatus struct {
	Available              int64               `json:"available"`
	Scheduled              int64               `json:"scheduled"`
	Pending                int64               `json:"pending"`
	Retryable              int64               `json:"retryable"`
	Running                int64               `json:"running"`
	Completed              int64               `json:"completed"`
	Cancelled              int64               `json:"cancelled"`
	Discarded              int64               `json:"discarded"`
	OldestAvailableSeconds float64             `json:"oldest_available_seconds"`
	Failing                []jobs.KindFailures `json:"failing"`
}

type countsStatus struct {
	Workflows         map[string]int64 `json:"workflows"`
	WorkflowsTotal    *int64           `json:"workflows_total"`
	Checkpoints       *int64           `json:"checkpoints"`
	Agents            *int64           `json:"agents"`
	Executions        *int64           `json:"executions"`
	Entities          *int64           `json:"entities"`
	Episodes          *int64           `json:"episodes"`
	Relations         *int64           `json:"relations"`
	EmbeddingsPending *int64           `json:"embeddings_pending"`
	EmbeddingsFailed  *int64           `json:"embeddings_failed"`
}

type interruptedOverview struct {
	Count  int64                 `json:"count"`
	Recent []interruptedWorkflow `json:"recent"`
}

type interruptedWorkflow struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Reason        string     `json:"reason,omitempty"`
	InterruptedAt *time.Time `json:"interrupted_at"`
}

func (r *statusReport) problem(code string, fatal bool, format string, args ...any) {
	r.Problems = append(r.Problems, statusProblem{Code: code, Message: fmt.Sprintf(format, args...), fatal: fatal})
}

// exitCode is the status's exit code: the worst problem decides.
func (r *statusReport) exitCode() int {
	code := statusHealthy
	for _, p := range r.Problems {
		if p.fatal {
			return statusUnreachable
		}
		code = statusDegraded
	}
	return code
}

func runStatus(c *cli.Context) error {
	probe := c.Duration("probe-timeout")
	if probe <= 0 {
		return cli.Exit("--probe-timeout must be positive", 2)
	}
	cfg := configFrom(c)
	if err := cfg.Normalize(); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	rep := &statusReport{Problems: []statusProblem{}, Warnings: []string{}, CheckedAt: time.Now().UTC().Truncate(time.Millisecond),
		CairnVersion: cairnVersion(), Database: databaseStatus{SchemaLatest: migrations.Latest(), SchemaPending: []int{}, RiverPending: []int{}}}

	pool, err := statusPool(c, cfg, rep)
	if err != nil {
		return err
	}
	if pool != nil {
		defer pool.Close()
		if err := collectStatus(c, pool, probe, rep); err != nil {
			if ce, ok := errors.AsType[cli.ExitCoder](err); ok {
				return ce
			}
			rep.problem("query_failed", true, "%v", err)
		}
	}
	rep.Healthy = len(rep.Problems) == 0
	if c.Bool("json") {
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("write status: %w", err)
		}
	} else {
		writeStatus(c.App.Writer, rep)
	}
	if code := rep.exitCode(); code != statusHealthy {
		// The report said why; a message here would only repeat it on stderr.
		return cli.Exit("", code)
	}
	return nil
}

// statusPool connects for the check, or records in rep why it cannot (and returns a nil pool).
// The returned error is for bad settings only.
//
// With no database configured, `connect` would start the embedded cluster (creating it the first
// time). status does not: it is asked what is, and starting a server (or running initdb) would
// change the answer and leave a process behind that nobody asked for. A stopped cluster is
// reported as such, exit 1, with `cairn db start` as the fix.
func statusPool(c *cli.Context, cfg *config.Config, rep *statusReport) (*pgxpool.Pool, error) {
	ctx := c.Context
	if !cfg.DatabaseConfigured() {
		cl, err := pgcluster.New(pgcluster.Options{DataDir: c.String("data-dir"), Logger: slog.Default()})
		if err != nil {
			rep.Database.Error = err.Error()
			rep.problem("database_unreachable", true, "no database is configured (DATABASE_URL / PG*) and the embedded cluster cannot be used: %v", err)
			return nil, nil
		}
		st, err := cl.Status(ctx)
		rep.Database.Embedded = &embeddedStatus{DataDir: st.DataDir, Initialized: st.Initialized, Running: st.Running}
		if !st.Running {
			rep.Database.Error = "the embedded cluster is not running"
			rep.problem("embedded_cluster_stopped", true, "no database is configured (DATABASE_URL / PG*) and the embedded cluster in %s is not running: `cairn db start` starts it (or set DATABASE_URL)", st.DataDir)
			return nil, nil
		}
		if err != nil {
			rep.Database.Error = err.Error()
			rep.problem("database_unreachable", true, "%v", err)
			return nil, nil
		}
		cfg.DatabaseURL = st.ConnString
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	// Belt and braces: a status check that wrote anything would be a bug, and this way the
	// server refuses the write rather than letting it happen.
	pc.ConnConfig.RuntimeParams["default_transaction_read_only"] = "on"
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = statusConnectTimeout
	}
	// One query at a time: no connections kept warm in the background.
	pc.MinConns = 0
	rep.Database.Target = db.Target(pc.ConnConfig.Config)
	pool, err := db.Open(ctx, pc)
	if err != nil {
		rep.Database.Error = err.Error()
		rep.problem("database_unreachable", true, "%v", err)
		return nil, nil
	}
	rep.Database.Reachable = true
	return pool, nil
}

// collectStatus fills rep from a reachable database. It returns an error when a query fails
// (exit 1), a cli.ExitCoder for bad embedder flags (exit 2).
func collectStatus(c *cli.Context, pool *pgxpool.Pool, probe time.Duration, rep *statusReport) error {
	ctx := c.Context
	d := &rep.Database
	err := pool.QueryRow(ctx, `SELECT current_setting('server_version'),
		coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vector'), ''),
		coalesce((SELECT default_version FROM pg_available_extensions WHERE name = 'vector'), '')`).
		Scan(&d.PostgresVersion, &d.Pgvector, &d.PgvectorAvailable)
	if err != nil {
		return fmt.Errorf("read server versions: %w", err)
	}
	if err := schemaStatus(ctx, pool, rep); err != nil {
		return err
	}
	super, role, err := db.Superuser(ctx, pool)
	if err != nil {
		return err
	}
	d.Role, d.Superuser = role, super
	if super && d.Embedded == nil {
		rep.Warnings = append(rep.Warnings, db.SuperuserWarning)
	}
	if d.Pgvector == "" {
		if d.PgvectorAvailable != "" {
			rep.problem("pgvector_missing", false, "pgvector %s is on the server but not installed in this database, so the knowledge graph is unavailable: run `cairn migrate` as a role that may CREATE EXTENSION (or have an administrator run CREATE EXTENSION vector)", d.PgvectorAvailable)
		} else {
			rep.problem("pgvector_missing", false, "pgvector is not installed on the server, so the knowledge graph is unavailable: install postgresql-NN-pgvector (scripts/ensure-pgvector.sh), then run `cairn migrate`")
		}
	}

	counts := &countsStatus{}
	rep.Counts = counts
	if err := domainCounts(ctx, pool, rep); err != nil {
		return err
	}
	if err := knowledgeStatus(c, pool, probe, rep); err != nil {
		return err
	}

	depth, err := jobs.QueueDepth(ctx, pool)
	switch {
	case errors.Is(err, jobs.ErrNoJobTables):
		// river_behind says why.
	case err != nil:
		return err
	default:
		rep.Queue = queueReport(depth)
		if n := rep.Queue.Discarded; n > 0 {
			var kinds []string
			for _, f := range depth.Failing {
				if f.State == rivertype.JobStateDiscarded {
					kinds = append(kinds, fmt.Sprintf("%s ×%d", f.Kind, f.Jobs))
				}
			}
			rep.problem("jobs_discarded", false, "%d background job(s) failed for good (discarded): %s; River deletes them after a week", n, strings.Join(kinds, ", "))
		}
	}
	return nil
}

// schemaStatus compares the database's migrations, cairn's and River's, with this binary's.
func schemaStatus(ctx context.Context, pool *pgxpool.Pool, rep *statusReport) error {
	d := &rep.Database
	v, err := migrations.Version(ctx, pool)
	if err != nil {
		return err
	}
	d.SchemaVersion = v
	// Versions rather than just the newest: a migration deferred for a missing extension leaves a
	// gap below the newest applied one.
	applied := map[int]bool{}
	if v > 0 {
		rows, _ := pool.Query(ctx, `SELECT version FROM cairn_migrations`)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		for _, n := range vs {
			applied[n] = true
		}
	}
	ms, err := migrations.Migrations()
	if err != nil {
		return err
	}
	var waiting []string
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		d.SchemaPending = append(d.SchemaPending, m.Version)
		// Migrating installs pgvector when the server has it; only its absence holds one back.
		if m.Requires != "" && (m.Requires != "vector" || d.PgvectorAvailable == "") {
			waiting = append(waiting, fmt.Sprintf("%04d_%s needs the %s extension on the server", m.Version, m.Name, m.Requires))
		}
	}
	switch {
	case v > d.SchemaLatest:
		rep.problem("schema_ahead", false, "the database schema is at migration %d but this cairn knows only up to %d: upgrade cairn", v, d.SchemaLatest)
	case len(d.SchemaPending) > 0:
		msg := fmt.Sprintf("the database schema is behind this cairn (at %d of %d; pending %v): run `cairn migrate`", v, d.SchemaLatest, d.SchemaPending)
		if len(waiting) > 0 {
			msg += " (" + strings.Join(waiting, "; ") + ")"
		}
		rep.problem("schema_behind", false, "%s", msg)
	}
	pending, err := jobs.Pending(ctx, pool)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		d.RiverPending = pending
		rep.problem("river_behind", false, "River's job tables lack %d migrations (%v): run `cairn migrate`", len(pending), pending)
	}
	return nil
}

// domainCounts counts workflows, checkpoints, agents and executions, and lists the interrupted
// workflows. A missing table (a schema behind) leaves its counts null.
func domainCounts(ctx context.Context, pool *pgxpool.Pool, rep *statusReport) error {
	counts := rep.Counts
	cps := checkpoint.New(pool)
	wc, err := cps.Counts(ctx)
	switch {
	case isUndefinedTable(err):
	case err != nil:
		return err
	default:
		counts.Workflows = wc.Workflows
		var total int64
		for _, n := range wc.Workflows {
			total += n
		}
		counts.WorkflowsTotal, counts.Checkpoints = countPtr(total), countPtr(wc.Checkpoints)
		ws, _, err := cps.ListWorkflows(ctx, checkpoint.ListWorkflowsParams{Status: checkpoint.StatusInterrupted, Limit: interruptedShown})
		if err != nil {
			return err
		}
		rep.Interrupted = &interruptedOverview{Count: wc.Workflows[checkpoint.StatusInterrupted], Recent: []interruptedWorkflow{}}
		for _, w := range ws {
			iw := interruptedWorkflow{ID: w.ID, Name: w.Name}
			// Raw SQL can set the status without an interrupt; then its time is unknown.
			if w.Interrupt != nil {
				iw.Reason = w.Interrupt.Reason
				if !w.Interrupt.At.IsZero() {
					at := w.Interrupt.At.UTC()
					iw.InterruptedAt = &at
				}
			}
			rep.Interrupted.Recent = append(rep.Interrupted.Recent, iw)
		}
	}
	ac, err := agents.New(pool).Counts(ctx)
	switch {
	case isUndefinedTable(err):
	case err != nil:
		return err
	default:
		counts.Agents, counts.Executions = countPtr(ac.Agents), countPtr(ac.Executions)
	}
	return nil
}

// knowledgeStatus counts the graph and reports on its embedders. Without the knowledge tables
// (pgvector missing when cairn migrated) it leaves both null: pgvector_missing or schema_behind
// says why.
func knowledgeStatus(c *cli.Context, pool *pgxpool.Pool, probe time.Duration, rep *statusReport) error {
	ctx := c.Context
	log := slog.Default()
	dims, err := knowledge.New(pool, knowledge.Options{Logger: log}).ColumnDimensions(ctx, knowledge.KindEntity)
	if errors.Is(err, knowledge.ErrUnavailable) {
		return nil
	}
	if err != nil {
		return err
	}
	es, configured, err := chooseEmbedder(c, dims, probe)
	if err != nil {
		return err
	}
	store := knowledge.New(pool, knowledge.Options{Embedder: configured, Logger: log})
	ks, err := store.Status(ctx)
	if err != nil {
		return fmt.Errorf("knowledge graph status: %w", err)
	}
	recorded, err := store.Models(ctx)
	if err != nil {
		return err
	}

	counts := rep.Counts
	counts.Entities, counts.Episodes, counts.Relations = countPtr(ks.Entities.Total), countPtr(ks.Episodes.Total), countPtr(ks.Relations)
	counts.EmbeddingsPending = countPtr(ks.Entities.Pending + ks.Episodes.Pending)
	failed := ks.Entities.Failed + ks.Episodes.Failed
	counts.EmbeddingsFailed = countPtr(failed)
	if failed > 0 {
		why := ""
		if len(ks.Failures) > 0 {
			f := ks.Failures[0]
			why = fmt.Sprintf(" (most: %d %s rows: %s)", f.Rows, f.Kind, oneLine(f.Reason, 200))
		}
		rep.problem("embeddings_failed", false, "%d knowledge rows failed to embed%s; rows whose text is to blame are queued again when it changes, the rest when cairn restarts after the cause is fixed", failed, why)
	}

	es.ColumnDimensions = dims
	es.GraphModels = ks.Models
	if es.GraphModels == nil {
		es.GraphModels = []knowledge.ModelCount{}
	}
	es.Recorded = map[string]string{knowledge.KindEntity: ks.Entities.Model, knowledge.KindEpisode: ks.Episodes.Model}
	es.GraphModel = cmp.Or(ks.Entities.Model, ks.Episodes.Model)
	es.OtherModelRows = ks.Entities.OtherModel + ks.Episodes.OtherModel
	rep.Embedder = es

	// What embeds a kind is its recorded model once it has one (serve builds that embedder from
	// the same --ollama-host), else the configured embedder. Each Ollama model in use must answer.
	inUse := map[string][]string{} // label → kinds
	infos := map[string]embed.Info{}
	columns := map[string]int{knowledge.KindEntity: ks.Entities.ColumnDimensions, knowledge.KindEpisode: ks.Episodes.ColumnDimensions}
	var misfits []string
	for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
		i, ok := recorded[kind]
		if !ok {
			i = configured.Info()
			if n := columns[kind]; i.Dimensions != 0 && i.Dimensions != n {
				misfits = append(misfits, fmt.Sprintf("%s are stored as vector(%d)", knowledge.Plural(kind), n))
			}
		}
		label := knowledge.ModelLabel(i)
		inUse[label] = append(inUse[label], knowledge.Plural(kind))
		infos[label] = i
	}
	if len(misfits) > 0 {
		rep.problem("embedder_misconfigured", false, "the embedder the flags choose (%s) makes %d-dimension vectors but %s: nothing new can be embedded until the model matches",
			es.Label, es.Dimensions, strings.Join(misfits, " and "))
	}
	for _, label := range slices.Sorted(maps.Keys(inUse)) {
		i := infos[label]
		if i.Provider != embed.ProviderOllama {
			continue
		}
		o := findProbe(es.Ollama, i.Model)
		if o == nil {
			eo := embed.Options{Provider: embed.ProviderOllama, Host: c.String("ollama-host"), Model: i.Model, Dimensions: i.Dimensions}
			om, err := embed.NewOllama(eo)
			if err != nil {
				return cli.Exit(err.Error(), 2)
			}
			es.Ollama = append(es.Ollama, probeOllama(ctx, om, eo.Host, probe))
			o = &es.Ollama[len(es.Ollama)-1]
		}
		if !o.OK {
			rep.problem("embedder_unreachable", false, "Ollama is not usable for %s, which embeds the graph's %s: %s; embed jobs wait and search uses keywords until it is", label, strings.Join(inUse[label], " and "), o.Error)
		}
	}
	for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
		if m := es.Recorded[kind]; m != "" && m != es.Label {
			rep.Warnings = append(rep.Warnings, fmt.Sprintf("%s are embedded with %s (recorded with their first vectors), not with the flags' %s: cairn keeps using %s for them", knowledge.Plural(kind), m, es.Label, m))
		}
	}
	if es.OtherModelRows > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("%d knowledge rows carry vectors of another model than their kind's: search by meaning skips them until they are embedded again", es.OtherModelRows))
	}
	return nil
}

// chooseEmbedder builds the embedder the flags choose, as openKnowledge does for serve (same
// options, same choice), and reports why and what Ollama said.
func chooseEmbedder(c *cli.Context, dims int, probe time.Duration) (*embedderStatus, embed.Embedder, error) {
	eo := embedOptions(c, dims)
	eo.ProbeTimeout = probe
	es := &embedderStatus{Requested: cmp.Or(strings.ToLower(strings.TrimSpace(eo.Provider)), embed.ProviderAuto), Ollama: []ollamaStatus{}}
	e, ch, err := embed.Choose(c.Context, eo)
	if err != nil {
		return nil, nil, cli.Exit(err.Error(), 2)
	}
	es.Why = ch.Why
	if ch.Probed {
		shown, secret := displayHost(eo.Host)
		st := ollamaStatus{Host: shown, Model: cmp.Or(eo.Model, embed.DefaultModel), OK: ch.ProbeErr == nil}
		if ch.ProbeErr != nil {
			st.Error = probeMessage(ch.ProbeErr, shown, secret, probe)
		}
		es.Ollama = append(es.Ollama, st)
	}
	i := e.Info()
	es.Provider, es.Model, es.Dimensions, es.Label = i.Provider, i.Model, i.Dimensions, knowledge.ModelLabel(i)
	return es, e, nil
}

func findProbe(ps []ollamaStatus, model string) *ollamaStatus {
	for i := range ps {
		if ps[i].Model == model {
			return &ps[i]
		}
	}
	return nil
}

// probeOllama asks Ollama whether it answers and has the model, within timeout.
func probeOllama(ctx context.Context, o *embed.Ollama, host string, timeout time.Duration) ollamaStatus {
	shown, secret := displayHost(host)
	st := ollamaStatus{Host: shown, Model: o.Info().Model}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := o.Probe(pctx); err != nil {
		st.Error = probeMessage(err, shown, secret, timeout)
		return st
	}
	st.OK = true
	return st
}

// probeMessage words a failed probe without the password a host may carry.
func probeMessage(err error, shown, secret string, timeout time.Duration) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("Ollama at %s did not answer within %s (--probe-timeout)", shown, timeout)
	}
	if secret != "" {
		msg = strings.ReplaceAll(msg, secret, shown)
	}
	return msg
}

// displayHost returns Ollama's address as it may be shown, and the form of it to hide in
// messages when it carries a password (a reverse proxy's basic auth); secret is "" when none.
func displayHost(host string) (shown, secret string) {
	h := strings.TrimSpace(host)
	if h == "" {
		return "http://127.0.0.1:11434 (default)", ""
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return "(unparsable Ollama host)", host
	}
	if _, has := u.User.Password(); has {
		return u.Redacted(), u.String()
	}
	return u.String(), ""
}

func queueReport(d jobs.Depth) *queueStatus {
	s := d.States
	q := &queueStatus{
		Available: s[rivertype.JobStateAvailable], Scheduled: s[rivertype.JobStateScheduled], Pending: s[rivertype.JobStatePending],
		Retryable: s[rivertype.JobStateRetryable], Running: s[rivertype.JobStateRunning], Completed: s[rivertype.JobStateCompleted],
		Cancelled: s[rivertype.JobStateCancelled], Discarded: s[rivertype.JobStateDiscarded],
		OldestAvailableSeconds: d.OldestAvailable.Seconds(), Failing: d.Failing,
	}
	if q.Failing == nil {
		q.Failing = []jobs.KindFailures{}
	}
	return q
}

// writeStatus prints the report for people: sections of aligned "key  value" lines.
func writeStatus(w io.Writer, r *statusReport) {
	const key = "  %-18s %s\n"
	line := func(k, format string, args ...any) { fmt.Fprintf(w, key, k, fmt.Sprintf(format, args...)) }
	verdict := "healthy"
	switch r.exitCode() {
	case statusUnreachable:
		verdict = "UNREACHABLE"
	case statusDegraded:
		verdict = "DEGRADED"
	}
	fmt.Fprintf(w, "cairn %s status: %s\n", r.CairnVersion, verdict)

	d := r.Database
	fmt.Fprintln(w, "\ndatabase")
	if d.Embedded != nil {
		state := "stopped"
		if d.Embedded.Running {
			state = "running"
		} else if !d.Embedded.Initialized {
			state = "not created"
		}
		line("embedded cluster", "%s (%s)", state, d.Embedded.DataDir)
	}
	if d.Target != "" {
		line("target", "%s", d.Target)
	}
	line("reachable", "%s", yesNo(d.Reachable))
	if !d.Reachable {
		if d.Error != "" {
			line("error", "%s", d.Error)
		}
	} else {
		line("postgresql", "%s", d.PostgresVersion)
		if d.Superuser {
			line("role", "%s (superuser)", d.Role)
		} else if d.Role != "" {
			line("role", "%s", d.Role)
		}
		switch {
		case d.Pgvector != "":
			line("pgvector", "%s", d.Pgvector)
		case d.PgvectorAvailable != "":
			line("pgvector", "not installed (%s available)", d.PgvectorAvailable)
		default:
			line("pgvector", "not installed")
		}
		schema := fmt.Sprintf("%d (this cairn: %d)", d.SchemaVersion, d.SchemaLatest)
		switch {
		case d.SchemaVersion > d.SchemaLatest:
			schema += "; ahead: upgrade cairn"
		case len(d.SchemaPending) > 0:
			schema += fmt.Sprintf("; behind, pending %v: run cairn migrate", d.SchemaPending)
		default:
			schema += "; up to date"
		}
		line("schema", "%s", schema)
		if len(d.RiverPending) > 0 {
			line("river schema", "%d migrations pending %v: run cairn migrate", len(d.RiverPending), d.RiverPending)
		} else {
			line("river schema", "up to date")
		}
	}

	if e := r.Embedder; e != nil {
		fmt.Fprintln(w, "\nembedder")
		line("flags choose", "%s (--embedder %s: %s)", e.Label, e.Requested, e.Why)
		if len(e.Ollama) == 0 {
			line("ollama", "not probed")
		}
		for _, o := range e.Ollama {
			if o.OK {
				line("ollama", "%s answered at %s", o.Model, o.Host)
			} else {
				line("ollama", "%s not usable: %s", o.Model, o.Error)
			}
		}
		for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
			m := e.Recorded[kind]
			switch {
			case m == "":
				m = "none recorded yet (the flags' embedder will be)"
			case m != e.Label:
				m += "  ← not the flags' embedder"
			}
			line(kind+" model", "%s", m)
		}
		line("vector columns", "vector(%d)", e.ColumnDimensions)
	}

	if q := r.Queue; q != nil {
		fmt.Fprintln(w, "\nqueue")
		avail := fmt.Sprint(q.Available)
		if q.Available > 0 {
			avail += fmt.Sprintf(" (oldest waiting %s)", (time.Duration(q.OldestAvailableSeconds * float64(time.Second))).Round(time.Second))
		}
		line("available", "%s", avail)
		line("scheduled", "%d", q.Scheduled+q.Pending)
		line("retryable", "%d", q.Retryable)
		line("running", "%d", q.Running)
		line("discarded", "%d (failed for good)", q.Discarded)
		for _, f := range q.Failing {
			msg := fmt.Sprintf("%s ×%d", f.State, f.Jobs)
			if f.LastError != "" {
				msg += ": " + oneLine(f.LastError, 100)
			}
			line("  "+f.Kind, "%s", msg)
		}
	}

	if n := r.Counts; n != nil && (n.WorkflowsTotal != nil || n.Agents != nil || n.Entities != nil) {
		fmt.Fprintln(w, "\ncounts")
		if n.WorkflowsTotal != nil {
			var parts []string
			for _, s := range checkpoint.Statuses() {
				if v := n.Workflows[s]; v > 0 {
					parts = append(parts, fmt.Sprintf("%s %d", s, v))
				}
			}
			by := ""
			if len(parts) > 0 {
				by = " (" + strings.Join(parts, ", ") + ")"
			}
			line("workflows", "%d%s", *n.WorkflowsTotal, by)
		}
		for _, kv := range []struct {
			k string
			v *int64
		}{{"checkpoints", n.Checkpoints}, {"agents", n.Agents}, {"executions", n.Executions},
			{"entities", n.Entities}, {"episodes", n.Episodes}, {"relations", n.Relations}} {
			if kv.v != nil {
				line(kv.k, "%d", *kv.v)
			}
		}
		if n.EmbeddingsPending != nil {
			line("embeddings", "%d pending, %d failed", *n.EmbeddingsPending, *n.EmbeddingsFailed)
		}
	}

	if in := r.Interrupted; in != nil {
		fmt.Fprintf(w, "\ninterrupted workflows: %d\n", in.Count)
		for _, iw := range in.Recent {
			at := "interrupt time unknown"
			if iw.InterruptedAt != nil {
				at = iw.InterruptedAt.Format(time.RFC3339)
			}
			desc := cmp.Or(iw.Reason, iw.Name)
			if desc != "" {
				desc = "  " + oneLine(desc, 60)
			}
			fmt.Fprintf(w, "  %-38s %s%s\n", iw.ID, at, desc)
		}
	}

	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - [%s] %s\n", p.Code, p.Message)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings")
		for _, s := range r.Warnings {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine shortens s to one line of at most n runes for the report.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

func countPtr(n int64) *int64 { return &n }

// isUndefinedTable reports whether err says a table does not exist (a schema behind).
func isUndefinedTable(err error) bool {
	pe, ok := errors.AsType[*pgconn.PgError](err)
	return ok && pe.Code == "42P01"
}
