package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/migrations"
	"github.com/cairn-mcp/cairn/status"
)

// statusDB is a test database with cairn's and River's tables, as `cairn migrate` leaves it
// (testdb's template has cairn's only).
func statusDB(t *testing.T) *testdb.DB {
	t.Helper()
	db := testdb.New(t)
	if err := jobs.Migrate(context.Background(), db.Pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("jobs.Migrate: %v", err)
	}
	return db
}

// statusJSON runs `cairn status --json` with args and decodes what it printed.
func statusJSON(t *testing.T, env []string, args ...string) (status.Report, cliResult) {
	t.Helper()
	r := runCLI(t, env, append([]string{"status", "--json"}, args...)...)
	var rep status.Report
	if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
		t.Fatalf("cairn status --json printed no JSON object (%v); exit %d\nstdout:\n%s\nstderr:\n%s", err, r.Code, r.Stdout, r.Stderr)
	}
	return rep, r
}

func problemCodes(rep status.Report) []string {
	var codes []string
	for _, p := range rep.Problems {
		codes = append(codes, p.Code)
	}
	return codes
}

// TestStatusReportsPopulatedDatabase fills every domain, a discarded and a waiting job, and
// checks that `status --json` counts them and exits 3 for the discarded job alone.
func TestStatusReportsPopulatedDatabase(t *testing.T) {
	t.Parallel()
	db := statusDB(t)
	ctx := context.Background()

	cps := checkpoint.New(db.Pool)
	for _, id := range []string{"wf-running", "wf-waiting"} {
		if _, err := cps.Start(ctx, checkpoint.StartParams{ID: id, Name: "deploy"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cps.Save(ctx, checkpoint.SaveParams{WorkflowID: id, NodeID: "plan", State: json.RawMessage(`{"step": 1}`)}); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now().Add(-time.Second)
	if _, err := cps.Interrupt(ctx, "wf-waiting", "approve the deploy?", json.RawMessage(`{"env": "prod"}`), "test"); err != nil {
		t.Fatal(err)
	}
	ag := agents.New(db.Pool)
	if _, err := ag.Register(ctx, agents.RegisterParams{AgentID: "coder-1", Template: "coder"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ag.Record(ctx, agents.RecordParams{AgentID: "coder-1", TokensIn: 10, TokensOut: 5, DurationMS: 1200, Outcome: agents.OutcomeSuccess}); err != nil {
		t.Fatal(err)
	}
	kn := knowledge.New(db.Pool, knowledge.Options{})
	if _, err := kn.AddEpisode(ctx, knowledge.EpisodeInput{Content: "ModuleNotFoundError on dashboard startup",
		Mentions: []knowledge.EntityRef{{Name: "dashboard", Type: "service"}}}); err != nil {
		t.Fatal(err)
	}
	_, err := db.Pool.Exec(ctx, `INSERT INTO river_job (state, kind, args, max_attempts, attempted_at, finalized_at, errors, scheduled_at)
		VALUES ('discarded', 'knowledge_embed', '{}', 1, now(), now(), ARRAY['{"attempt": 1, "error": "model exploded"}'::jsonb], now()),
		       ('available', 'knowledge_embed', '{}', 5, NULL, NULL, NULL, now() - interval '2 minutes')`)
	if err != nil {
		t.Fatal(err)
	}

	rep, r := statusJSON(t, []string{"DATABASE_URL=" + db.URL}, "--embedder", "builtin")
	if r.Code != status.ExitDegraded {
		t.Errorf("exit %d, want %d (degraded: a discarded job)\nstderr:\n%s", r.Code, status.ExitDegraded, r.Stderr)
	}
	if rep.Healthy || !slices.Equal(problemCodes(rep), []string{"jobs_discarded"}) {
		t.Errorf("healthy %t, problems %+v; want unhealthy with jobs_discarded alone", rep.Healthy, rep.Problems)
	}
	d := rep.Database
	if !d.Reachable || d.Error != "" || !strings.Contains(d.Target, db.Name) || d.PostgresVersion == "" || d.Pgvector == "" {
		t.Errorf("database = %+v; want reachable, its target, and the versions", d)
	}
	if d.SchemaVersion != migrations.Latest() || d.SchemaLatest != migrations.Latest() || len(d.SchemaPending) != 0 || len(d.RiverPending) != 0 {
		t.Errorf("schema = %d of %d, pending %v, River pending %v; want up to date", d.SchemaVersion, d.SchemaLatest, d.SchemaPending, d.RiverPending)
	}

	n := rep.Counts
	if n == nil {
		t.Fatal("counts is null")
	}
	wantWorkflows := map[string]int64{"pending": 0, "running": 1, "interrupted": 1, "completed": 0, "failed": 0, "cancelled": 0}
	if len(n.Workflows) != len(wantWorkflows) {
		t.Errorf("workflows = %v, want %v", n.Workflows, wantWorkflows)
	}
	for s, want := range wantWorkflows {
		if got, ok := n.Workflows[s]; !ok || got != want {
			t.Errorf("workflows[%s] = %d (present %t), want %d", s, got, ok, want)
		}
	}
	for _, c := range []struct {
		name string
		got  *int64
		want int64
	}{
		{"workflows_total", n.WorkflowsTotal, 2}, {"checkpoints", n.Checkpoints, 2}, {"agents", n.Agents, 1},
		{"executions", n.Executions, 1}, {"entities", n.Entities, 1}, {"episodes", n.Episodes, 1},
		{"relations", n.Relations, 0}, {"embeddings_pending", n.EmbeddingsPending, 2}, {"embeddings_failed", n.EmbeddingsFailed, 0},
	} {
		if c.got == nil || *c.got != c.want {
			t.Errorf("counts.%s = %v, want %d", c.name, c.got, c.want)
		}
	}

	in := rep.Interrupted
	if in == nil || in.Count != 1 || len(in.Recent) != 1 {
		t.Fatalf("interrupted = %+v, want one", in)
	}
	if w := in.Recent[0]; w.ID != "wf-waiting" || w.Reason != "approve the deploy?" || w.InterruptedAt == nil ||
		w.InterruptedAt.Before(before) || w.InterruptedAt.After(time.Now().Add(time.Second)) {
		t.Errorf("interrupted workflow = %+v, want wf-waiting, its reason, interrupted just now", w)
	}

	q := rep.Queue
	if q == nil {
		t.Fatal("queue is null")
	}
	if q.Available != 1 || q.Discarded != 1 || q.Retryable != 0 || q.Running != 0 || q.Scheduled != 0 {
		t.Errorf("queue = %+v, want 1 available and 1 discarded", q)
	}
	if q.OldestAvailableSeconds < 120 || q.OldestAvailableSeconds > 180 {
		t.Errorf("oldest_available_seconds = %g, want about 120", q.OldestAvailableSeconds)
	}
	if len(q.Failing) != 1 || q.Failing[0] != (jobs.KindFailures{Kind: "knowledge_embed", State: "discarded", Jobs: 1, LastError: "model exploded"}) {
		t.Errorf("failing = %+v, want the discarded knowledge_embed job with its error", q.Failing)
	}

	e := rep.Embedder
	if e == nil {
		t.Fatal("embedder is null")
	}
	if e.Requested != "builtin" || e.Provider != "builtin" || e.Label != "builtin/hashing-v1/768" || e.ColumnDimensions != 768 || len(e.Ollama) != 0 {
		t.Errorf("embedder = %+v; want the built-in embedder at 768 dimensions, Ollama not probed", e)
	}
	if e.GraphModel != "" || e.Recorded["entity"] != "" || e.Recorded["episode"] != "" {
		t.Errorf("graph model %q, recorded %v; want none before anything is embedded", e.GraphModel, e.Recorded)
	}
}

// TestStatusExitCodes checks the exit code and problems scripts rely on.
func TestStatusExitCodes(t *testing.T) {
	t.Parallel()
	healthy := statusDB(t)
	noRiver := testdb.New(t) // cairn's migrations only
	// Entities were embedded by Ollama: serve keeps embedding them with it whatever the flags
	// say, so Ollama not answering matters even with --embedder builtin.
	recordedOllama := statusDB(t)
	if _, err := recordedOllama.Pool.Exec(context.Background(),
		`INSERT INTO knowledge_models (kind, provider, model, dimensions) VALUES ('entity', 'ollama', 'nomic-embed-text', 768)`); err != nil {
		t.Fatal(err)
	}
	// As if 0003 had been deferred: the newest applied migration alone would hide it.
	gap := statusDB(t)
	if _, err := gap.Pool.Exec(context.Background(), `DELETE FROM cairn_migrations WHERE version = 3`); err != nil {
		t.Fatal(err)
	}
	failedEmbedding := statusDB(t)
	for _, q := range []string{`INSERT INTO episodes (content) VALUES ('x')`,
		`UPDATE episodes SET embed_state = 'failed', embed_error = 'text is longer than the model''s context'`} {
		if _, err := failedEmbedding.Pool.Exec(context.Background(), q); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		env       []string
		args      []string
		wantCode  int
		wantCodes []string
		// wantInProblem must appear in the first problem's message, wantWarning in a warning.
		wantInProblem, wantWarning string
	}{
		{name: "healthy", env: []string{"DATABASE_URL=" + healthy.URL}, args: []string{"--embedder", "builtin"}, wantCode: status.ExitHealthy},
		{name: "Ollama unreachable", env: []string{"DATABASE_URL=" + healthy.URL},
			args:     []string{"--embedder", "ollama", "--ollama-host", "http://127.0.0.1:1", "--probe-timeout", "1s"},
			wantCode: status.ExitDegraded, wantCodes: []string{"embedder_unreachable"}, wantInProblem: "Ollama"},
		{name: "auto without Ollama falls back", env: []string{"DATABASE_URL=" + healthy.URL, "OLLAMA_HOST=http://127.0.0.1:1"},
			wantCode: status.ExitHealthy},
		{name: "graph embedded by an unreachable Ollama", env: []string{"DATABASE_URL=" + recordedOllama.URL},
			args:     []string{"--embedder", "builtin", "--ollama-host", "127.0.0.1:1"},
			wantCode: status.ExitDegraded, wantCodes: []string{"embedder_unreachable"}, wantInProblem: "ollama/nomic-embed-text/768, which embeds the graph's entities",
			wantWarning: "entities are embedded with ollama/nomic-embed-text/768"},
		{name: "model of another size", env: []string{"DATABASE_URL=" + healthy.URL},
			args:     []string{"--embedder", "ollama", "--embed-model", "all-minilm", "--ollama-host", "127.0.0.1:1"},
			wantCode: status.ExitDegraded, wantCodes: []string{"embedder_misconfigured", "embedder_unreachable"},
			wantInProblem: "makes 384-dimension vectors but entities are stored as vector(768) and episodes are stored as vector(768)"},
		{name: "a migration missing below the newest", env: []string{"DATABASE_URL=" + gap.URL}, args: []string{"--embedder", "builtin"},
			wantCode: status.ExitDegraded, wantCodes: []string{"schema_behind"}, wantInProblem: "pending [3]"},
		{name: "failed embeddings", env: []string{"DATABASE_URL=" + failedEmbedding.URL}, args: []string{"--embedder", "builtin"},
			wantCode: status.ExitDegraded, wantCodes: []string{"embeddings_failed"}, wantInProblem: "1 episode rows: text is longer than the model's context"},
		{name: "River not migrated", env: []string{"DATABASE_URL=" + noRiver.URL}, args: []string{"--embedder", "builtin"},
			wantCode: status.ExitDegraded, wantCodes: []string{"river_behind"}, wantInProblem: "cairn migrate"},
		{name: "unreachable", env: []string{"DATABASE_URL=postgres://cairn@" + testbin.FreeAddr(t) + "/cairn?sslmode=disable"},
			wantCode: status.ExitUnreachable, wantCodes: []string{"database_unreachable"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rep, r := statusJSON(t, tc.env, tc.args...)
			if r.Code != tc.wantCode {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, tc.wantCode, r.Stdout, r.Stderr)
			}
			if got := problemCodes(rep); !slices.Equal(got, tc.wantCodes) {
				t.Errorf("problems %+v, want codes %v", rep.Problems, tc.wantCodes)
			}
			if rep.Healthy != (tc.wantCode == status.ExitHealthy) {
				t.Errorf("healthy = %t with exit %d", rep.Healthy, r.Code)
			}
			if tc.wantInProblem != "" && len(rep.Problems) > 0 && !strings.Contains(rep.Problems[0].Message, tc.wantInProblem) {
				t.Errorf("problem %q does not mention %q", rep.Problems[0].Message, tc.wantInProblem)
			}
			if tc.wantWarning != "" && !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, tc.wantWarning) }) {
				t.Errorf("warnings %q, want one saying %q", rep.Warnings, tc.wantWarning)
			}
		})
	}
}

func TestStatusUnreachableDatabase(t *testing.T) {
	t.Parallel()
	const password = "s3cret-Pa55"
	url := "postgres://cairn:" + password + "@" + testbin.FreeAddr(t) + "/cairn?sslmode=disable"
	for _, asJSON := range []bool{true, false} {
		args := []string{"status"}
		if asJSON {
			args = append(args, "--json")
		}
		r := runCLI(t, []string{"DATABASE_URL=" + url}, args...)
		if r.Code != status.ExitUnreachable {
			t.Errorf("%v: exit %d, want %d\nstderr:\n%s", args, r.Code, status.ExitUnreachable, r.Stderr)
		}
		if strings.Contains(r.Stdout+r.Stderr, password) {
			t.Errorf("%v printed the password:\n%s%s", args, r.Stdout, r.Stderr)
		}
		if !asJSON {
			if !strings.Contains(r.Stdout, "UNREACHABLE") || !strings.Contains(r.Stdout, "reachable          no") {
				t.Errorf("report does not say the database is unreachable:\n%s", r.Stdout)
			}
			continue
		}
		var rep map[string]any
		if err := json.Unmarshal([]byte(r.Stdout), &rep); err != nil {
			t.Fatalf("no JSON: %v\n%s", err, r.Stdout)
		}
		d, _ := rep["database"].(map[string]any)
		if rep["healthy"] != false || d["reachable"] != false || d["error"] == "" || d["error"] == nil || !strings.Contains(d["target"].(string), `user "cairn"`) {
			t.Errorf("JSON = %s; want healthy and reachable false, an error and the target", r.Stdout)
		}
		// Machines read the same keys whatever happened: sections are null, not missing.
		for _, k := range []string{"problems", "warnings", "embedder", "queue", "counts", "interrupted"} {
			if _, ok := rep[k]; !ok {
				t.Errorf("key %q missing from %s", k, r.Stdout)
			}
		}
	}
}

// TestStatusDoesNotStartTheEmbeddedCluster: with no database configured, status reports the
// embedded cluster as stopped and leaves its data dir as it was.
func TestStatusDoesNotStartTheEmbeddedCluster(t *testing.T) {
	t.Parallel()
	dataDir := filepath.Join(t.TempDir(), "postgres")
	rep, r := statusJSON(t, []string{"CAIRN_DATA_DIR=" + dataDir})
	if r.Code != status.ExitUnreachable || !slices.Equal(problemCodes(rep), []string{"embedded_cluster_stopped"}) {
		t.Errorf("exit %d, problems %+v; want 1 and embedded_cluster_stopped\nstderr:\n%s", r.Code, rep.Problems, r.Stderr)
	}
	if e := rep.Database.Embedded; e == nil || e.Running || e.Initialized || e.DataDir != dataDir {
		t.Errorf("database.embedded = %+v, want %s, not initialized, not running", e, dataDir)
	}
	if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
		t.Errorf("status created the data dir %s (stat: %v)", dataDir, err)
	}
}

// TestStatusHumanReport checks the sections of the report for people on a healthy database.
func TestStatusHumanReport(t *testing.T) {
	t.Parallel()
	db := statusDB(t)
	r := runCLI(t, []string{"DATABASE_URL=" + db.URL}, "status", "--embedder", "builtin")
	if r.Code != status.ExitHealthy {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	for _, want := range []string{"status: healthy", "\ndatabase\n", "reachable          yes", "schema             ",
		"\nembedder\n", "builtin/hashing-v1/768", "\nqueue\n", "discarded          0", "\ncounts\n", "workflows          0",
		"interrupted workflows: 0"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, r.Stdout)
		}
	}
	if strings.Contains(r.Stdout, "problems") {
		t.Errorf("a healthy report lists problems:\n%s", r.Stdout)
	}
}

// Connected as a superuser, status says so and warns; as a role with only what cairn needs
// (testdb.AppRole, as docs/deploy.md sets one up), it does not.
func TestStatusWarnsAboutSuperuser(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		db    *testdb.DB
		super bool
	}{
		{"superuser", statusDB(t), true},
		{"least privilege", testdb.NewApp(t), false},
	} {
		rep, r := statusJSON(t, []string{"DATABASE_URL=" + c.db.URL}, "--embedder", "builtin")
		warned := slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "superuser") })
		if rep.Database.Superuser != c.super || warned != c.super || rep.Database.Role == "" {
			t.Errorf("%s: role %q superuser %v, warnings %q\nstderr:\n%s", c.name, rep.Database.Role, rep.Database.Superuser, rep.Warnings, r.Stderr)
		}
	}
}
