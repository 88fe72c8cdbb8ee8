package knowledge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/knowledge"
)

func newStore(t *testing.T) (*knowledge.Store, *testdb.DB, embed.Embedder) {
	t.Helper()
	db := testdb.New(t)
	e, err := embed.NewBuiltin(768)
	if err != nil {
		t.Fatal(err)
	}
	return knowledge.New(db.Pool, knowledge.Options{Embedder: e}), db, e
}

// drain embeds everything pending, run after run as the embed job does: one run stops at its
// time budget with More set, which on a busy machine comes before thousands of rows are done.
func drain(t *testing.T, s *knowledge.Store) knowledge.EmbedStats {
	t.Helper()
	var total knowledge.EmbedStats
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := s.EmbedPending(context.Background(), knowledge.EmbedOptions{})
		if err != nil {
			t.Fatalf("embed pending: %v", err)
		}
		total.Embedded += st.Embedded
		total.Stale += st.Stale
		total.Failed += st.Failed
		if !st.More {
			return total
		}
		if time.Now().After(deadline) {
			t.Fatalf("still more to embed after 3 minutes (%+v so far)", total)
		}
	}
}

func TestSearchFindsTheRightEpisode(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	episodes := []string{
		"ModuleNotFoundError: No module named 'numpy' when the dashboard starts",
		"Deployed nginx 1.27 to production behind the load balancer",
		"Disk full on the database host; vacuum failed with no space left on device",
		"User asked for a summary of last week's incidents",
	}
	ids := make([]int64, len(episodes))
	for i, c := range episodes {
		w, err := s.AddEpisode(ctx, knowledge.EpisodeInput{Content: c, Type: "error"})
		if err != nil {
			t.Fatal(err)
		}
		if w.Embedding != "pending" {
			t.Fatalf("new episode embedding = %q, want pending", w.Embedding)
		}
		ids[i] = w.ID
	}
	// Before any vector exists, keyword search already finds it, and hybrid says nothing is lost.
	res, err := s.Search(ctx, knowledge.SearchQuery{Query: "numpy module missing", Mode: knowledge.ModeKeyword})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Results) == 0 || res.Results[0].ID != ids[0] {
		t.Fatalf("keyword search before embedding: %+v", res.Results)
	}
	if st := drain(t, s); st.Embedded != len(episodes) {
		t.Fatalf("embedded %d, want %d", st.Embedded, len(episodes))
	}
	for _, mode := range []string{knowledge.ModeSemantic, knowledge.ModeHybrid} {
		res, err := s.Search(ctx, knowledge.SearchQuery{Query: "No module named numpy on dashboard startup", Mode: mode})
		if err != nil {
			t.Fatal(err)
		}
		if res.Mode != mode || res.Fallback != "" {
			t.Fatalf("%s: mode %q fallback %q", mode, res.Mode, res.Fallback)
		}
		if len(res.Results) != len(episodes) || res.Results[0].ID != ids[0] || res.Results[0].Kind != knowledge.KindEpisode {
			t.Fatalf("%s: results %+v", mode, res.Results)
		}
	}
}

func TestConcurrentUpsertsMakeOneEntity(t *testing.T) {
	t.Parallel()
	s, db, _ := newStore(t)
	ctx := context.Background()
	names := []string{"ModuleNotFoundError", "modulenotfounderror", "  ModuleNotFoundError ", "MODULENOTFOUNDERROR"}
	var wg sync.WaitGroup
	ids := make(chan int64, 40)
	errs := make(chan error, 40)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w, err := s.UpsertEntity(ctx, knowledge.EntityInput{Name: names[i%len(names)], Type: "error"})
			if err != nil {
				errs <- err
				return
			}
			ids <- w.ID
		}()
	}
	wg.Wait()
	close(ids)
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[int64]bool{}
	for id := range ids {
		seen[id] = true
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM entities`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || n != 1 {
		t.Fatalf("%d distinct ids, %d rows; want one entity", len(seen), n)
	}
}

func TestStaleVectorNeverOverwritesNewerText(t *testing.T) {
	t.Parallel()
	s, db, e := newStore(t)
	ctx := context.Background()
	w, err := s.UpsertEntity(ctx, knowledge.EntityInput{Name: "dashboard", Type: "service", Summary: ptr("serves charts")})
	if err != nil {
		t.Fatal(err)
	}
	// An embedder that edits the row while "the model runs", as another writer would.
	edit := &editingEmbedder{Embedder: e, edit: func() {
		if _, err := s.UpsertEntity(ctx, knowledge.EntityInput{Name: "dashboard", Type: "service", Summary: ptr("serves charts and alerts")}); err != nil {
			t.Error(err)
		}
	}}
	st := drain(t, knowledge.New(db.Pool, knowledge.Options{Embedder: edit}))
	if st.Stale != 1 || st.Embedded != 1 {
		t.Fatalf("stats %+v: want the first vector stale and the second written", st)
	}
	var state string
	var matches bool
	want, _ := e.Embed(ctx, embed.Document, []string{"service: dashboard\nserves charts and alerts"})
	if err := db.Pool.QueryRow(ctx, `SELECT embed_state, embedding = $2::vector FROM entities WHERE id = $1`, w.ID, knowledge.VectorText(want[0])).Scan(&state, &matches); err != nil {
		t.Fatal(err)
	}
	if state != "embedded" || !matches {
		t.Fatalf("state %q, vector of the final text: %v", state, matches)
	}
}

type editingEmbedder struct {
	embed.Embedder
	once sync.Once
	edit func()
}

func (e *editingEmbedder) Embed(ctx context.Context, k embed.Kind, texts []string) ([][]float32, error) {
	v, err := e.Embedder.Embed(ctx, k, texts)
	e.once.Do(e.edit)
	return v, err
}

func TestFilteredSearchFillsThePage(t *testing.T) {
	t.Parallel()
	s, db, _ := newStore(t)
	ctx := context.Background()
	// 2,000 entities, 10% of type "error"; the HNSW scan's first candidates are mostly others.
	if _, err := db.Pool.Exec(ctx, `INSERT INTO entities (name, entity_type, context)
		SELECT 'thing ' || i, CASE WHEN i % 10 = 0 THEN 'error' ELSE 'other' END, 'a note about item ' || i || ' and module failures'
		FROM generate_series(1, 2000) i`); err != nil {
		t.Fatal(err)
	}
	if st := drain(t, s); st.Embedded != 2000 {
		t.Fatalf("embedded %d", st.Embedded)
	}
	// Hybrid at the largest page asks each list for 200 candidates, twice hnsw.ef_search.
	for _, q := range []knowledge.SearchQuery{
		{Query: "module failures note", EntityType: "error", Limit: 50, Mode: knowledge.ModeSemantic},
		{Query: "module failures note", EntityType: "error", Limit: knowledge.MaxSearch, Mode: knowledge.ModeHybrid},
	} {
		res, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		semantic := 0
		for _, h := range res.Results {
			if h.Type != "error" {
				t.Fatalf("%s: result of type %q", q.Mode, h.Type)
			}
			if h.SemanticRank != nil {
				semantic++
			}
		}
		// A full page, and in hybrid mode most of it found by meaning too (the scan is approximate).
		if len(res.Results) != q.Limit || semantic < q.Limit*9/10 {
			t.Fatalf("%s filtered search returned %d results, %d found by meaning; want a full page of %d", q.Mode, len(res.Results), semantic, q.Limit)
		}
	}
}

func TestRelationsAndNeighbors(t *testing.T) {
	t.Parallel()
	s, _, _ := newStore(t)
	ctx := context.Background()
	rel := func(src, typ, dst, fact string) knowledge.RelationWritten {
		t.Helper()
		w, err := s.Relate(ctx, knowledge.RelationInput{Source: knowledge.EntityRef{Name: src, Type: "node"}, Type: typ,
			Target: knowledge.EntityRef{Name: dst, Type: "node"}, Fact: fact})
		if err != nil {
			t.Fatal(err)
		}
		return w
	}
	// a → b → c → a is a cycle; c → d is one further.
	rel("a", "next", "b", "")
	rel("b", "next", "c", "")
	rel("c", "next", "a", "")
	rel("c", "next", "d", "")
	first := rel("a", "fixed_by", "x", "restart fixed it")
	if again := rel("a", "fixed_by", "x", "restart fixed it"); again.ID != first.ID || again.Created {
		t.Fatalf("same fact again: %+v, first %+v", again, first)
	}
	second := rel("a", "fixed_by", "x", "pinning the version fixed it")
	if len(second.Invalidated) != 1 || second.Invalidated[0] != first.ID {
		t.Fatalf("new fact did not invalidate the old: %+v", second)
	}
	for _, tc := range []struct {
		depth int
		types []string
		want  map[string]int
	}{
		{1, nil, map[string]int{"b": 1, "c": 1, "x": 1}},
		{2, []string{"next"}, map[string]int{"b": 1, "c": 1, "d": 2}},
		{3, nil, map[string]int{"b": 1, "c": 1, "x": 1, "d": 2}},
	} {
		n, err := s.Neighbors(ctx, knowledge.NeighborsQuery{Entity: knowledge.EntityRef{Name: "a"}, Depth: tc.depth, RelationTypes: tc.types})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for _, nb := range n.Neighbors {
			got[nb.Name] = nb.Depth
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("depth %d types %v: got %v, want %v", tc.depth, tc.types, got, tc.want)
		}
	}
	ent, err := s.GetEntity(ctx, knowledge.EntityRef{Name: "a", Type: "node"}, true)
	if err != nil {
		t.Fatal(err)
	}
	var current, ended int
	for _, r := range ent.Relations {
		if r.Type == "fixed_by" {
			if r.InvalidAt == nil {
				current++
			} else {
				ended++
			}
		}
	}
	if current != 1 || ended != 1 {
		t.Fatalf("fixed_by facts: %d current, %d ended; want 1 and 1", current, ended)
	}
}

func ptr[T any](v T) *T { return &v }

func asErr[T error](err error, target *T) bool { return errors.As(err, target) }

// Retries with one idempotency key, even at once, store one episode and answer with it.
func TestAddEpisodeIdempotent(t *testing.T) {
	t.Parallel()
	s, db, _ := newStore(t)
	ctx := context.Background()
	in := knowledge.EpisodeInput{Content: "deployed nginx 1.27", Type: "deployment", IdempotencyKey: "deploy-4521",
		Mentions: []knowledge.EntityRef{{Name: "nginx", Type: "service"}}}
	var wg sync.WaitGroup
	results := make([]knowledge.EpisodeWritten, 8)
	errs := make([]error, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = s.AddEpisode(ctx, in)
		}()
	}
	wg.Wait()
	created := 0
	for i, r := range results {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if r.ID != results[0].ID || len(r.Mentions) != 1 || r.Duplicate == r.Created {
			t.Fatalf("result %d: %+v (first %+v)", i, r, results[0])
		}
		if r.Created {
			created++
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM episodes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if created != 1 || n != 1 {
		t.Fatalf("%d calls created, %d rows; want one of each", created, n)
	}
}
