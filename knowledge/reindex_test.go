package knowledge_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/knowledge"
)

// builtinFactory builds built-in embedders of any size, as cairn's processes do for a recorded
// model that is not their own.
func builtinFactory(i embed.Info) (embed.Embedder, error) { return embed.NewBuiltin(i.Dimensions) }

// Reindexing to a model of another size while searches and writes go on: no search fails, they
// switch to the new model at one point, and every row ends embedded by it.
func TestReindexWithoutDowntime(t *testing.T) {
	t.Parallel()
	s, db, _ := newStore(t)
	ctx := context.Background()
	for i := range 300 {
		if _, err := s.AddEpisode(ctx, knowledge.EpisodeInput{Content: fmt.Sprintf("incident %d: the checkout service timed out talking to payments", i), Type: "error"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddEpisode(ctx, knowledge.EpisodeInput{Content: "ModuleNotFoundError: No module named numpy on dashboard startup", Type: "error"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)

	// A second process: configured with the old model, it follows the recorded one.
	old, _ := embed.NewBuiltin(768)
	reader := knowledge.New(db.Pool, knowledge.Options{Embedder: old, Factory: builtinFactory})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var searches, failures atomic.Int64
	var mu sync.Mutex
	models := map[string][]string{} // kind → the models it was searched with, in order, each run once
	afterSwitch := make(chan struct{})
	var afterOnce sync.Once
	wg.Add(2)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			res, err := reader.Search(ctx, knowledge.SearchQuery{Query: "no module named numpy dashboard", Mode: knowledge.ModeSemantic, Limit: 3})
			searches.Add(1)
			if err != nil || res.Mode != knowledge.ModeSemantic || len(res.Results) != 3 {
				failures.Add(1)
				t.Errorf("search during the reindex: %v %+v", err, res)
				continue
			}
			mu.Lock()
			for kind, m := range res.Models {
				if seq := models[kind]; len(seq) == 0 || seq[len(seq)-1] != m {
					models[kind] = append(seq, m)
				}
			}
			if res.Models[knowledge.KindEpisode] == "builtin/hashing-v1/384" {
				afterOnce.Do(func() { close(afterSwitch) })
			}
			mu.Unlock()
		}
	}()
	go func() { // writes go on, and are embedded by the current model's workers
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := reader.AddEpisode(ctx, knowledge.EpisodeInput{Content: fmt.Sprintf("late incident %d", i)}); err != nil {
				t.Error(err)
				return
			}
			if _, err := reader.EmbedPending(ctx, knowledge.EmbedOptions{}); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()

	next, _ := embed.NewBuiltin(384)
	var phases []string
	res, err := s.Reindex(ctx, knowledge.ReindexOptions{Embedder: next, Batch: 16, Phase: func(kind, p string) { phases = append(phases, kind+": "+p) }})
	if err == nil {
		select { // a search after the switch
		case <-afterSwitch:
		case <-time.After(time.Minute):
			t.Error("no search used the new model within a minute of the switch")
		}
	}
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || res[1].From != "builtin/hashing-v1/768" || res[1].To != "builtin/hashing-v1/384" || res[1].Embedded < 301 {
		t.Fatalf("reindex result %+v", res)
	}
	if searches.Load() < 10 || failures.Load() > 0 {
		t.Fatalf("%d searches, %d failed", searches.Load(), failures.Load())
	}
	// Each kind switches at one point, from the old model to the new, and never back. (Entities
	// have no rows: they are searched from the point their model is recorded, the new one.)
	if ep := models[knowledge.KindEpisode]; len(ep) != 2 || ep[0] != "builtin/hashing-v1/768" || ep[1] != "builtin/hashing-v1/384" {
		t.Fatalf("episodes searched with, in order: %v (want the old, then the new, once)", ep)
	}
	if en := models[knowledge.KindEntity]; len(en) > 1 || (len(en) == 1 && en[0] != "builtin/hashing-v1/384") {
		t.Fatalf("entities searched with, in order: %v (want at most the new)", en)
	}
	// Rows written after the switch are embedded with the new model by the old-configured process.
	if _, err := reader.AddEpisode(ctx, knowledge.EpisodeInput{Content: "after the switch"}); err != nil {
		t.Fatal(err)
	}
	if _, err := reader.EmbedPending(ctx, knowledge.EmbedOptions{}); err != nil {
		t.Fatal(err)
	}
	st, err := reader.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Episodes.Model != "builtin/hashing-v1/384" || st.Episodes.ColumnDimensions != 384 || st.Episodes.Pending != 0 ||
		st.Episodes.Embedded != st.Episodes.Total || st.Episodes.OtherModel != 0 {
		t.Fatalf("after the reindex: %+v (phases %v)", st.Episodes, phases)
	}
	// Nothing left of the reindex; running it again has nothing to do.
	var leftovers int
	if err := db.Pool.QueryRow(ctx, `SELECT (SELECT count(*) FROM knowledge_reindex) + (SELECT count(*) FROM pg_attribute
		WHERE attrelid IN ('entities'::regclass, 'episodes'::regclass) AND attname LIKE '%next%' AND NOT attisdropped)`).Scan(&leftovers); err != nil {
		t.Fatal(err)
	}
	if leftovers != 0 {
		t.Fatalf("%d leftovers of the reindex", leftovers)
	}
	again, err := s.Reindex(ctx, knowledge.ReindexOptions{Embedder: next})
	if err != nil || again[0].Skipped == "" || again[1].Skipped == "" {
		t.Fatalf("second reindex: %+v %v", again, err)
	}
}

// A reindex to another model than the unfinished one is refused; aborting drops it.
func TestReindexConflictAndAbort(t *testing.T) {
	t.Parallel()
	s, db, _ := newStore(t)
	ctx := context.Background()
	if _, err := s.AddEpisode(ctx, knowledge.EpisodeInput{Content: "something happened"}); err != nil {
		t.Fatal(err)
	}
	drain(t, s)
	if _, err := db.Pool.Exec(ctx, `INSERT INTO knowledge_reindex (kind, provider, model, dimensions) VALUES ('episode', 'builtin', 'hashing-v1', 256)`); err != nil {
		t.Fatal(err)
	}
	e384, _ := embed.NewBuiltin(384)
	_, err := s.Reindex(ctx, knowledge.ReindexOptions{Embedder: e384, Kinds: []string{knowledge.KindEpisode}})
	var conflict *knowledge.ReindexConflictError
	if !asErr(err, &conflict) || conflict.Pending != "builtin/hashing-v1/256" {
		t.Fatalf("want a conflict naming the unfinished model, got %v", err)
	}
	if err := s.AbortReindex(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reindex(ctx, knowledge.ReindexOptions{Embedder: e384, Kinds: []string{knowledge.KindEpisode}}); err != nil {
		t.Fatal(err)
	}
	if err := s.RebuildIndexes(ctx, nil); err != nil {
		t.Fatal(err)
	}
}
