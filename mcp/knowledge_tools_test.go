package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/knowledge"
)

// fastEmbedFlags make retries and sweeps quick enough for tests.
var fastEmbedFlags = []string{"--embed-sweep", "300ms", "--embed-max-backoff", "300ms"}

func builtinClient(t *testing.T, db *testdb.DB) *sdk.ClientSession {
	t.Helper()
	return stdioClient(t, db, append([]string{"--embedder", "builtin"}, fastEmbedFlags...)...)
}

func ollamaClient(t *testing.T, db *testdb.DB, ollama *embedtest.Server, extra ...string) *sdk.ClientSession {
	t.Helper()
	args := append([]string{"--embedder", "ollama", "--ollama-host", ollama.URL}, fastEmbedFlags...)
	return stdioClient(t, db, append(args, extra...)...)
}

// status returns knowledge_status decoded.
func status(t *testing.T, cs *sdk.ClientSession) knowledge.Status {
	t.Helper()
	var st knowledge.Status
	decode(t, ok(t, cs, "knowledge_status", map[string]any{}), &st)
	return st
}

func decode(t *testing.T, v any, into any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// waitFor polls cond until it holds or the deadline passes, then fails with what it saw.
func waitFor(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		done, seen := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s; last seen: %s", what, within, seen)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitEmbedded waits until no row is pending and n rows carry cairn's vectors.
func waitEmbedded(t *testing.T, cs *sdk.ClientSession, n int64) knowledge.Status {
	t.Helper()
	var st knowledge.Status
	waitFor(t, 30*time.Second, "all rows embedded", func() (bool, string) {
		st = status(t, cs)
		return st.Entities.Pending+st.Episodes.Pending == 0 && st.Entities.Embedded+st.Episodes.Embedded == n, fmt.Sprintf("%+v %+v", st.Entities, st.Episodes)
	})
	return st
}

func search(t *testing.T, cs *sdk.ClientSession, args map[string]any) knowledge.SearchResult {
	t.Helper()
	var res knowledge.SearchResult
	decode(t, ok(t, cs, "knowledge_search", args), &res)
	return res
}

var incidents = []struct{ name, content, typ string }{
	{"dashboard-startup", "ModuleNotFoundError: No module named 'numpy' when the dashboard starts", "error"},
	{"nginx-rollout", "Deployed nginx 1.27 to production behind the load balancer", "deployment"},
	{"db-disk", "Disk full on the database host; VACUUM failed with no space left on device", "error"},
	{"standup", "The team agreed to move the weekly review to Thursdays", "conversation"},
}

func TestKnowledgeThroughMCP(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := builtinClient(t, db)

	ids := map[string]int64{}
	for _, in := range incidents {
		d := ok(t, cs, "knowledge_add_episode", map[string]any{"name": in.name, "content": in.content, "episode_type": in.typ,
			"source_description": "journal", "entities": []any{map[string]any{"name": in.name + "-service", "entity_type": "service"}}})
		if d["embedding"] != "pending" || d["kind"] != "episode" {
			t.Fatalf("add_episode = %v", d)
		}
		n, _ := d["id"].(json.Number).Int64()
		ids[in.name] = n
	}
	// Found by keyword at once, before any vector exists.
	res := search(t, cs, map[string]any{"query": "numpy module", "mode": "keyword"})
	if len(res.Results) == 0 || res.Results[0].ID != ids["dashboard-startup"] {
		t.Fatalf("keyword search before embedding: %+v", res)
	}
	st := waitEmbedded(t, cs, int64(2*len(incidents)))
	if st.Provider != "builtin" || st.Dimensions != 768 || st.Entities.ColumnDimensions != 768 || st.OldestPending != nil ||
		st.Entities.Model != "builtin/hashing-v1/768" || st.Episodes.Model != "builtin/hashing-v1/768" {
		t.Fatalf("status = %+v", st)
	}

	// By meaning (and fused): the right episode first, with the type filter honoured.
	for _, mode := range []string{"hybrid", "semantic"} {
		res = search(t, cs, map[string]any{"query": "dashboard start-up fails: no module named numpy", "mode": mode, "kinds": []string{"episode"}})
		if res.Mode != mode || res.Fallback != "" || len(res.Results) != len(incidents) || res.Results[0].ID != ids["dashboard-startup"] {
			t.Fatalf("%s search: %+v", mode, res)
		}
	}
	res = search(t, cs, map[string]any{"query": "disk space problems", "episode_type": "error", "since": time.Now().Add(-time.Hour).Format(time.RFC3339)})
	if len(res.Results) != 2 || res.Results[0].ID != ids["db-disk"] {
		t.Fatalf("filtered search: %+v", res)
	}

	// The graph: what fixed it, found from the error.
	ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": "ModuleNotFoundError", "entity_type": "error", "summary": "Python cannot import a module"})
	again := ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": " modulenotfounderror", "entity_type": "error"})
	if again["created"] != false {
		t.Fatalf("same error again made a new entity: %v", again)
	}
	rel := ok(t, cs, "knowledge_relate", map[string]any{"source": "ModuleNotFoundError", "source_type": "error", "relation_type": "fixed_by",
		"target": "pin numpy<2", "target_type": "fix", "fact": "pinning numpy<2 fixed the dashboard", "episode_id": ids["dashboard-startup"]})
	if rel["created"] != true {
		t.Fatalf("relate = %v", rel)
	}
	ok(t, cs, "knowledge_relate", map[string]any{"source": "pin numpy<2", "source_type": "fix", "relation_type": "applied_to", "target": "dashboard-startup-service", "target_type": "service"})
	var nb knowledge.Neighborhood
	decode(t, ok(t, cs, "knowledge_neighbors", map[string]any{"entity": "ModuleNotFoundError", "depth": 2}), &nb)
	if len(nb.Neighbors) != 2 || nb.Neighbors[0].Name != "pin numpy<2" || nb.Neighbors[0].Depth != 1 || nb.Neighbors[1].Depth != 2 || len(nb.Relations) != 2 {
		t.Fatalf("neighbors = %+v", nb)
	}
	var got KnowledgeGet
	decode(t, ok(t, cs, "knowledge_get", map[string]any{"name": "ModuleNotFoundError", "entity_type": "error"}), &got)
	if got.Entity == nil || got.Entity.Summary != "Python cannot import a module" || len(got.Entity.Relations) != 1 || got.Entity.Relations[0].Fact != "pinning numpy<2 fixed the dashboard" {
		t.Fatalf("get entity = %+v", got.Entity)
	}
	decode(t, ok(t, cs, "knowledge_get", map[string]any{"kind": "episode", "id": ids["dashboard-startup"]}), &got)
	if got.Episode == nil || len(got.Episode.Mentions) != 1 || got.Episode.State != "embedded" || got.Episode.Model != "builtin/hashing-v1/768" {
		t.Fatalf("get episode = %+v", got.Episode)
	}

	// Raw SQL writes are embedded too (by the sweep), and a caller's own vector is kept as theirs.
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO episodes (content, episode_type) VALUES ($1, 'error')", "params": []any{"OOMKilled: the worker ran out of memory"}})
	ok(t, cs, "insert_vector", map[string]any{"table": "entities", "columns": map[string]any{"name": "TimeoutError", "entity_type": "error", "context": "Dashboard startup"},
		"embedding_column": "embedding", "embedding": unitVector(768)})
	st = waitEmbedded(t, cs, int64(2*len(incidents)+2+1)) // + the error and the fix entities, + the raw SQL episode
	if st.Entities.External != 1 {
		t.Fatalf("caller's vector not kept as external: %+v", st.Entities)
	}
	res = search(t, cs, map[string]any{"query": "out of memory", "mode": "semantic", "episode_type": "error", "limit": 1})
	if len(res.Results) != 1 || !strings.Contains(res.Results[0].Text, "OOMKilled") {
		t.Fatalf("raw SQL episode not found by meaning: %+v", res)
	}
}

// KnowledgeGet mirrors knowledge_get's result.
type KnowledgeGet struct {
	Entity  *knowledge.Entity  `json:"entity"`
	Episode *knowledge.Episode `json:"episode"`
}

func unitVector(dims int) []any {
	v := make([]any, dims)
	for i := range v {
		v[i] = 0
	}
	v[0] = 1
	return v
}

// The predecessor's statements run verbatim against the knowledge schema.
func TestKnowledgeSeedStatements(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := builtinClient(t, db)
	d := ok(t, cs, "insert_vector", map[string]any{"table": "entities",
		"columns":          map[string]any{"name": "ModuleNotFoundError", "entity_type": "error", "context": "Dashboard startup"},
		"embedding_column": "embedding", "embedding": unitVector(768)})
	src := d["key"].(map[string]any)["id"]
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO entities (name, entity_type) VALUES ('numpy', 'package')"})
	ok(t, cs, "execute", map[string]any{"sql": "INSERT INTO relations (source_id, target_id, relation_type) SELECT $1, id, 'caused_by' FROM entities WHERE name = 'numpy'", "params": []any{src}})
	rs := rows(t, ok(t, cs, "query", map[string]any{"sql": `
SELECT e.*, r.relation_type
FROM entities e
JOIN relations r ON r.target_id = e.id
WHERE r.source_id = $1
`, "params": []any{src}}))
	if len(rs) != 1 || rs[0]["name"] != "numpy" || rs[0]["relation_type"] != "caused_by" {
		t.Fatalf("entities ⋈ relations = %v", rs)
	}
	ok(t, cs, "knowledge_add_episode", map[string]any{"content": "ModuleNotFoundError on dashboard startup", "episode_type": "error"})
	waitEmbedded(t, cs, 2)
	q, _ := embed.NewBuiltin(768)
	qv, _ := q.Embed(context.Background(), embed.Query, []string{"dashboard startup error"})
	qa := make([]any, len(qv[0]))
	for i, x := range qv[0] {
		qa[i] = x
	}
	rs = rows(t, ok(t, cs, "vector_search", map[string]any{"table": "episodes", "embedding_column": "embedding", "query_embedding": qa, "limit": 10,
		"where_clause": "episode_type = 'error' AND created_at > NOW() - INTERVAL '7 days'"}))
	if len(rs) != 1 || rs[0]["content"] != "ModuleNotFoundError on dashboard startup" {
		t.Fatalf("vector_search episodes = %v", rs)
	}
	for _, stmt := range []string{`
CREATE INDEX IF NOT EXISTS idx_entities_embedding
ON entities USING ivfflat (embedding vector_cosine_ops)
WITH (lists = 100)
`, `
CREATE INDEX IF NOT EXISTS idx_entities_embedding_hnsw
ON entities USING hnsw (embedding vector_cosine_ops)
WITH (m = 16, ef_construction = 64)
`} {
		ok(t, cs, "execute", map[string]any{"sql": stmt})
	}
}

func TestKnowledgeSurvivesOllamaOutages(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ollama := embedtest.New()
	defer ollama.Close()
	cs := ollamaClient(t, db, ollama, "--embed-timeout", "500ms")

	add := func(prefix string, n int) {
		for i := range n {
			ok(t, cs, "knowledge_add_episode", map[string]any{"content": fmt.Sprintf("%s incident %d: the payment service returned HTTP 502", prefix, i), "episode_type": "error"})
		}
	}
	stillPending := func(want int64) {
		t.Helper()
		time.Sleep(time.Second) // several retries and sweeps
		st := status(t, cs)
		if st.Episodes.Pending != want || st.Episodes.Failed != 0 || st.Episodes.Total != want+st.Episodes.Embedded {
			t.Fatalf("during the outage: %+v, want %d pending and none failed", st.Episodes, want)
		}
	}
	total := int64(0)
	for _, outage := range []struct {
		name       string
		start, end func()
	}{
		{"HTTP 500", func() { ollama.FailNext(1 << 30) }, func() { ollama.FailNext(0) }},
		{"timeout", func() { ollama.SetDelay(3 * time.Second) }, func() { ollama.SetDelay(0) }},
		{"absent", func() { ollama.SetUnreachable(true) }, func() { ollama.SetUnreachable(false) }},
	} {
		outage.start()
		add(outage.name, 5)
		stillPending(5)
		if outage.name == "absent" {
			// The query cannot be embedded either: keyword search, saying so.
			res := search(t, cs, map[string]any{"query": "payment service 502"})
			if res.Mode != "keyword" || res.Fallback == "" || len(res.Results) == 0 {
				t.Fatalf("search while Ollama is absent: %+v", res)
			}
		}
		outage.end()
		total += 5
		waitEmbedded(t, cs, total)
	}
	res := search(t, cs, map[string]any{"query": "payment service returned 502", "mode": "semantic", "limit": 20})
	if res.Mode != "semantic" || len(res.Results) != int(total) || res.Model != "ollama/nomic-embed-text/768" {
		t.Fatalf("after recovery: mode %s, %d results, model %s", res.Mode, len(res.Results), res.Model)
	}
}

func TestKnowledgeFinalVectorMatchesFinalText(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetDelay(1500 * time.Millisecond)
	cs := ollamaClient(t, db, ollama)

	ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": "dashboard", "entity_type": "service", "summary": "serves charts"})
	waitFor(t, 10*time.Second, "the first embed call in flight", func() (bool, string) { return ollama.Calls() > 0, "" })
	ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": "dashboard", "entity_type": "service", "summary": "serves charts and alerts"})
	ollama.SetDelay(0)
	waitEmbedded(t, cs, 1)

	b, _ := embed.NewBuiltin(768)
	want, _ := b.Embed(context.Background(), embed.Document, []string{"search_document: service: dashboard\nserves charts and alerts"})
	var same bool
	if err := db.Pool.QueryRow(context.Background(), `SELECT embedding = $1::vector AND embedded_hash = content_hash FROM entities WHERE name = 'dashboard'`,
		knowledge.VectorText(want[0])).Scan(&same); err != nil {
		t.Fatal(err)
	}
	if !same {
		t.Fatal("the stored vector is not the final text's")
	}
	var sawOld bool
	for _, r := range ollama.Requests() {
		for _, in := range r.Input {
			sawOld = sawOld || strings.HasSuffix(in, "serves charts")
		}
	}
	if !sawOld {
		t.Fatal("the first text was never embedded: the test did not race as intended")
	}
}

func TestKnowledgeWrongDimensionModel(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetModel("all-minilm", 384)
	cs := ollamaClient(t, db, ollama, "--embed-model", "all-minilm")

	d := ok(t, cs, "knowledge_add_episode", map[string]any{"content": "ModuleNotFoundError on dashboard startup", "episode_type": "error"})
	var st knowledge.Status
	waitFor(t, 20*time.Second, "the row marked failed", func() (bool, string) {
		st = status(t, cs)
		return st.Episodes.Failed == 1, fmt.Sprintf("%+v", st.Episodes)
	})
	if st.Episodes.Pending != 0 || len(st.Failures) != 1 || !strings.Contains(st.Failures[0].Reason, "384") || !strings.Contains(st.Failures[0].Reason, "cairn reindex") ||
		!strings.Contains(strings.Join(st.Warnings, "\n"), "episodes.embedding is vector(768)") {
		t.Fatalf("status = %+v", st)
	}
	var got KnowledgeGet
	decode(t, ok(t, cs, "knowledge_get", map[string]any{"kind": "episode", "id": d["id"]}), &got)
	if got.Episode.State != "failed" || !strings.Contains(got.Episode.Error, "vector(768)") {
		t.Fatalf("episode = %+v", got.Episode)
	}
	// Searching says it used keywords; the status says why.
	res := search(t, cs, map[string]any{"query": "dashboard startup"})
	if res.Mode != "keyword" || !strings.Contains(res.Fallback, "nothing is embedded yet") || len(res.Results) != 1 {
		t.Fatalf("search = %+v", res)
	}

	// The operator configures a model of the right size and restarts: the row is embedded.
	cs.Close()
	cs = ollamaClient(t, db, ollama, "--embed-model", "nomic-embed-text")
	st = waitEmbedded(t, cs, 1)
	if len(st.Failures) != 0 || st.Models[0].Model != "ollama/nomic-embed-text/768" {
		t.Fatalf("after the restart: %+v", st)
	}
}

func TestKnowledgeBadArguments(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := builtinClient(t, db)
	ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": "dashboard", "entity_type": "service"})
	ok(t, cs, "knowledge_upsert_entity", map[string]any{"name": "dashboard", "entity_type": "repository"})
	for _, tc := range []struct {
		tool  string
		args  map[string]any
		wants []string
	}{
		{"knowledge_search", map[string]any{"query": " "}, []string{"query is required"}},
		{"knowledge_search", map[string]any{"query": "x", "limit": 500}, []string{"limit 500", "1 to 100"}},
		{"knowledge_search", map[string]any{"query": "x", "mode": "fuzzy"}, []string{"fuzzy", "hybrid"}},
		{"knowledge_search", map[string]any{"query": "x", "kinds": []string{"facts"}}, []string{"facts", "entity"}},
		{"knowledge_search", map[string]any{"query": "x", "since": "yesterday"}, []string{"since", "RFC 3339"}},
		{"knowledge_search", map[string]any{"query": "x", "kinds": []string{"entity"}, "episode_type": "error"}, []string{"type filter"}},
		{"knowledge_add_episode", map[string]any{"content": ""}, []string{"content is required"}},
		{"knowledge_add_episode", map[string]any{"content": "x", "metadata": []int{1}}, []string{"metadata", "object"}},
		{"knowledge_add_episode", map[string]any{"content": "x", "entities": []any{map[string]any{"name": "nobody"}}}, []string{"no entity is named", "entity_type"}},
		{"knowledge_add_episode", map[string]any{"content": "x", "entities": []any{map[string]any{"id": 999999}}}, []string{"#999999", "does not exist"}},
		{"knowledge_upsert_entity", map[string]any{"name": ""}, []string{"name is required"}},
		{"knowledge_upsert_entity", map[string]any{"name": "x", "summary": "a", "context": "b"}, []string{"summary and context"}},
		{"knowledge_relate", map[string]any{"source": "dashboard", "relation_type": "uses", "target": 1}, []string{"2 entities are named", "service", "repository"}},
		{"knowledge_relate", map[string]any{"source": true, "relation_type": "uses", "target": 1}, []string{"source", "id (number) or name (string)"}},
		{"knowledge_relate", map[string]any{"source": 1, "relation_type": " ", "target": 2}, []string{"relation_type is required"}},
		{"knowledge_relate", map[string]any{"source": 1, "relation_type": "uses", "target": 2, "invalidate": true}, []string{"relation", "does not exist"}},
		{"knowledge_get", map[string]any{"kind": "fact", "id": 1}, []string{"fact", "entity or episode"}},
		{"knowledge_get", map[string]any{"kind": "episode", "id": 424242}, []string{"episode #424242 does not exist"}},
		{"knowledge_get", map[string]any{}, []string{"id, or its name"}},
		{"knowledge_neighbors", map[string]any{"entity": 1, "depth": 4}, []string{"depth 4", "1 to 3"}},
		{"knowledge_neighbors", map[string]any{"entity": "nobody"}, []string{"no entity is named"}},
		{"knowledge_neighbors", map[string]any{"entity": 1, "entity_type": "service"}, []string{"type goes with a name"}},
	} {
		fails(t, cs, tc.tool, tc.args, tc.wants...)
	}
}

// A text the model cannot take fails alone, with the reason; its batch is embedded.
func TestKnowledgePoisonRowFailsAlone(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetMaxInputChars(300)
	ollama.SetDelay(500 * time.Millisecond) // so that all three are pending when the first job runs
	cs := ollamaClient(t, db, ollama)
	long := ok(t, cs, "knowledge_add_episode", map[string]any{"content": strings.Repeat("stack frame ", 100), "episode_type": "error"})
	for _, c := range []string{"short one", "short two"} {
		ok(t, cs, "knowledge_add_episode", map[string]any{"content": c})
	}
	var st knowledge.Status
	waitFor(t, 20*time.Second, "two embedded, one failed", func() (bool, string) {
		st = status(t, cs)
		return st.Episodes.Embedded == 2 && st.Episodes.Failed == 1, fmt.Sprintf("%+v", st.Episodes)
	})
	var got KnowledgeGet
	decode(t, ok(t, cs, "knowledge_get", map[string]any{"kind": "episode", "id": long["id"]}), &got)
	if got.Episode.State != "failed" || !strings.Contains(got.Episode.Error, "longer than model") {
		t.Fatalf("long episode = %+v", got.Episode)
	}
}

// A process configured with another model than the one the graph's vectors were made with
// keeps using the recorded one, so models never mix, and says so.
func TestKnowledgeProcessesAgreeOnTheModel(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	first := builtinClient(t, db)
	ok(t, first, "knowledge_add_episode", map[string]any{"content": "disk full on the database host", "episode_type": "error"})
	waitEmbedded(t, first, 1)

	ollama := embedtest.New()
	defer ollama.Close()
	second := ollamaClient(t, db, ollama)
	ok(t, second, "knowledge_add_episode", map[string]any{"content": "database host ran out of disk again", "episode_type": "error"})
	st := waitEmbedded(t, second, 2)
	if len(st.Models) != 1 || st.Models[0].Model != "builtin/hashing-v1/768" || st.Models[0].Rows != 2 || ollama.Calls() != 0 {
		t.Fatalf("models = %+v, Ollama calls %d: want both rows by the recorded builtin model", st.Models, ollama.Calls())
	}
	if !strings.Contains(strings.Join(st.Warnings, "\n"), "not with this process's ollama/nomic-embed-text/768") {
		t.Fatalf("no warning about the configured model: %v", st.Warnings)
	}
	res := search(t, second, map[string]any{"query": "disk full database", "mode": "semantic"})
	if res.Model != "builtin/hashing-v1/768" || len(res.Results) != 2 {
		t.Fatalf("search from the second process: %+v", res)
	}
}
