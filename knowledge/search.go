package knowledge

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/embed"
)

// Search modes.
const (
	ModeHybrid   = "hybrid"
	ModeSemantic = "semantic"
	ModeKeyword  = "keyword"
)

// SearchQuery is a question to the graph.
type SearchQuery struct {
	Query string
	// Kinds limits the search to entities and/or episodes; default both, or the kind a type
	// filter implies.
	Kinds []string
	// EntityType and EpisodeType keep only rows of that type.
	EntityType  string
	EpisodeType string
	// Since keeps entities created and episodes that occurred at or after it.
	Since time.Time
	// Limit is how many results; default DefaultSearch, at most MaxSearch.
	Limit int
	// Mode is ModeHybrid (default), ModeSemantic or ModeKeyword.
	Mode string
}

// Hit is one search result. Score is the fused reciprocal-rank score in hybrid mode, the cosine
// similarity in semantic mode and the text rank in keyword mode; the ranks say which list found it.
type Hit struct {
	Kind         string    `json:"kind"`
	ID           int64     `json:"id"`
	Name         string    `json:"name"`
	Type         string    `json:"type"`
	Text         string    `json:"text"`
	Score        float64   `json:"score"`
	SemanticRank *int      `json:"semantic_rank,omitempty"`
	KeywordRank  *int      `json:"keyword_rank,omitempty"`
	Distance     *float64  `json:"distance,omitempty"`
	EmbedState   string    `json:"embed_state"`
	At           time.Time `json:"at"`
}

// SearchResult is the hits, best first, and how they were found. Fallback says why a search asked
// to use meaning used keywords only.
type SearchResult struct {
	Results  []Hit  `json:"results"`
	Mode     string `json:"mode"`
	Fallback string `json:"fallback,omitempty"`
	// Model names the models searched by meaning with, comma-separated when the kinds differ
	// (between the switches of a reindex, which switches one kind at a time).
	Model string `json:"model,omitempty"`
	// Models maps each kind searched by meaning to its model's label.
	Models map[string]string `json:"models,omitempty"`
}

// Search finds entities and episodes by meaning, by keyword, or both fused by reciprocal rank
// fusion (the default), in one round trip. When the query cannot be embedded (no embedder,
// Ollama down or slow) it searches by keyword and says why in Fallback.
func (s *Store) Search(ctx context.Context, q SearchQuery) (SearchResult, error) {
	q.Query = strings.TrimSpace(q.Query)
	if q.Query == "" {
		return SearchResult{}, inputErrorf("query is required: what you are looking for, e.g. \"ModuleNotFoundError numpy on dashboard startup\"")
	}
	if len(q.Query) > MaxTextLen {
		return SearchResult{}, inputErrorf("query is %d bytes; at most %d", len(q.Query), MaxTextLen)
	}
	if q.Limit == 0 {
		q.Limit = DefaultSearch
	}
	if q.Limit < 1 || q.Limit > MaxSearch {
		return SearchResult{}, inputErrorf("limit %d: use 1 to %d", q.Limit, MaxSearch)
	}
	switch q.Mode {
	case "":
		q.Mode = ModeHybrid
	case ModeHybrid, ModeSemantic, ModeKeyword:
	default:
		return SearchResult{}, inputErrorf("mode %q: use hybrid (default), semantic or keyword", q.Mode)
	}
	wantEntities, wantEpisodes, err := kinds(q)
	if err != nil {
		return SearchResult{}, err
	}

	for attempt := 0; ; attempt++ {
		res, used, seen, err := s.search(ctx, q, wantEntities, wantEpisodes)
		if attempt > 0 || (err == nil && maps.Equal(used, seen)) || (err != nil && !switchedUnder(err)) {
			return res, err
		}
		// A reindex switched a kind's model after this process read it: search again with the
		// new one, so that no search straddles the switch.
		s.forgetModels()
	}
}

// search runs one search with the models this process believes current. It returns the labels
// it searched by meaning with and the labels recorded in the statement's own snapshot.
func (s *Store) search(ctx context.Context, q SearchQuery, wantEntities, wantEpisodes bool) (SearchResult, map[string]string, map[string]string, error) {
	res := SearchResult{Mode: q.Mode, Results: []Hit{}}
	used := map[string]string{}
	vecs := map[string]*string{}
	var why, labels []string
	if q.Mode != ModeKeyword {
		byLabel := map[string]string{}
		for _, kind := range []string{KindEntity, KindEpisode} {
			if kind == KindEntity && !wantEntities || kind == KindEpisode && !wantEpisodes {
				continue
			}
			v, label, reason := s.embedQuery(ctx, kind, q.Query, byLabel)
			switch {
			case reason != "":
				why = append(why, reason)
			case label != "":
				vecs[kind], used[kind] = &v, label
				if !slices.Contains(labels, label) {
					labels = append(labels, label)
				}
			}
		}
		res.Model = strings.Join(labels, ", ")
		if len(used) > 0 {
			res.Models = maps.Clone(used)
		}
		if len(used) == 0 {
			res.Mode = ModeKeyword
			if len(why) == 0 {
				why = append(why, "nothing is embedded yet (knowledge_status says why when rows are waiting)")
			}
		}
		if len(why) > 0 {
			res.Fallback = strings.Join(why, "; ") + "; searched by keyword"
			if len(used) > 0 {
				res.Fallback = strings.Join(why, "; ") + "; those searched by keyword only"
			}
		}
	}
	keyword := res.Mode != ModeSemantic
	// Each list contributes more candidates than the page so that fusion has something to
	// reorder. ef_search stays at 100 whatever the page: with iterative scans on, an HNSW scan
	// returns more rows than ef_search when asked, while a larger ef_search makes the planner
	// price the index scan above reading every row and sorting (a sequential scan of 100,000
	// vectors: 260 ms instead of 5; docs/BENCHMARKS.md).
	candidates := q.Limit
	if res.Mode == ModeHybrid {
		candidates = max(2*q.Limit, 20)
	}
	const efSearch = 100

	b := &pgx.Batch{}
	// The models are read after the search, in the same transaction: a switch cannot commit while
	// the search holds its tables, so what this read sees is what the search saw (a snapshot read
	// before would not do: a column rename is seen at once, whatever the snapshot).
	b.Queue(beginReadOnlySQL)
	b.Queue(fmt.Sprintf(efSearchSQL, efSearch))
	b.Queue(iterativeScanSQL)
	b.Queue(searchSQL, vecs[KindEntity], used[KindEntity], q.Query, wantEntities, wantEpisodes, nullable(q.EntityType), nullable(q.EpisodeType),
		nullableTime(q.Since), candidates, q.Limit, vecs[KindEntity] != nil, keyword,
		vecs[KindEpisode], used[KindEpisode], vecs[KindEpisode] != nil)
	b.Queue(searchedModelsSQL)
	b.Queue(commitSQL)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	for range b.Len() - 3 {
		if _, err := br.Exec(); err != nil {
			return res, nil, nil, wrap(err, "search")
		}
	}
	rows, err := br.Query()
	if err != nil {
		return res, nil, nil, wrap(err, "search")
	}
	res.Results, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Hit, error) {
		var h Hit
		var tr, rrf float64
		if err := r.Scan(&h.Kind, &h.ID, &h.Name, &h.Type, &h.Text, &h.SemanticRank, &h.KeywordRank, &h.Distance, &tr, &rrf, &h.EmbedState, &h.At); err != nil {
			return h, err
		}
		switch {
		case res.Mode == ModeHybrid:
			h.Score = rrf
		case res.Mode == ModeSemantic && h.Distance != nil:
			h.Score = 1 - *h.Distance
		default:
			h.Score = tr
		}
		return h, nil
	})
	if err != nil {
		return res, nil, nil, wrap(err, "search")
	}
	seen := map[string]string{}
	if rows, err = br.Query(); err == nil {
		err = collectInto(rows, seen)
	}
	if err != nil {
		return res, nil, nil, wrap(err, "search")
	}
	// Only the kinds searched by meaning matter: a kind recorded meanwhile was searched by keyword.
	for kind := range seen {
		if _, ok := used[kind]; !ok {
			delete(seen, kind)
		}
	}
	if _, err := br.Exec(); err != nil {
		return res, nil, nil, wrap(err, "search")
	}
	return res, used, seen, nil
}

// switchedUnder reports whether err is a query vector meeting a column of another size: what a
// search whose query was embedded just before a reindex's switch runs into.
func switchedUnder(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22000" && strings.Contains(pe.Message, "different vector dimensions")
}

func collectInto(rows pgx.Rows, m map[string]string) error {
	defer rows.Close()
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		m[k] = v
	}
	return rows.Err()
}

// kinds reads which tables a query searches. A type filter implies its kind.
func kinds(q SearchQuery) (entities, episodes bool, err error) {
	if len(q.Kinds) == 0 {
		entities = q.EpisodeType == "" || q.EntityType != ""
		episodes = q.EntityType == "" || q.EpisodeType != ""
		return entities, episodes, nil
	}
	for _, k := range q.Kinds {
		switch k {
		case KindEntity, "entities":
			entities = true
		case KindEpisode, "episodes":
			episodes = true
		default:
			return false, false, inputErrorf("kinds: %q is not a kind; use entity and/or episode", k)
		}
	}
	if !entities && q.EntityType != "" || !episodes && q.EpisodeType != "" {
		return false, false, inputErrorf("a type filter for a kind that kinds leaves out: add it to kinds or drop the filter")
	}
	return entities, episodes, nil
}

// embedQuery embeds the query for searching a kind by meaning, with the kind's recorded model.
// It returns the vector's text and the model's label, or why the kind cannot be searched by
// meaning; both empty when the kind has no vectors yet. byLabel caches vectors across kinds.
func (s *Store) embedQuery(ctx context.Context, kind, query string, byLabel map[string]string) (vec, label, why string) {
	models, err := s.Models(ctx)
	if err != nil {
		return "", "", err.Error()
	}
	rec, ok := models[kind]
	if !ok {
		return "", "", ""
	}
	label = ModelLabel(rec)
	if v, ok := byLabel[label]; ok {
		return v, label, ""
	}
	e, _, err := s.embedderFor(ctx, kind)
	if err != nil {
		return "", "", err.Error()
	}
	ectx, cancel := context.WithTimeout(ctx, s.opts.QueryTimeout)
	defer cancel()
	vs, err := e.Embed(ectx, embed.Query, []string{query})
	switch {
	case err != nil:
		return "", "", fmt.Sprintf("the query could not be embedded with %s (%v)", label, err)
	case len(vs) != 1 || len(vs[0]) != rec.Dimensions:
		return "", "", fmt.Sprintf("the embedder for %s returned a vector of another size", label)
	}
	byLabel[label] = VectorText(vs[0])
	return byLabel[label], label, ""
}

func nullable(s string) *string {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return &s
}

func nullableTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}
