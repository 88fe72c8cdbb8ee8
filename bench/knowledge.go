package main

// The knowledge-graph benchmarks: search by meaning over 100,000 entities of 768
// dimensions with the HNSW index — latency, and recall@10 against exact search, without a filter
// and with one that keeps 10% of the rows — and how fast the embed pipeline turns committed writes
// into vectors, with an Ollama stand-in that answers at once and one that takes 25 ms a call.
//
// The vectors are synthetic: random uniform vectors in 768 dimensions are a known worst case for
// HNSW (every point is about as far from every other), unlike text embeddings, whose points lie
// near a surface of far fewer dimensions. So each row is drawn from one of n/100 clusters: the
// cluster's centre, plus a random point of a 16-dimensional subspace of its own, plus isotropic
// noise, normalized. Queries are fresh points drawn the same way, embedded by a stand-in embedder
// that maps the query text ("q17") to its prepared vector — what is measured is the search, not
// the embedding.

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

const (
	knowledgeDims    = 768
	clusterSize      = 100 // rows per cluster, on average
	clusterRank      = 16  // dimensions of a cluster's own subspace
	clusterSpread    = 0.8 // norm of a row's offset within its cluster's subspace (the centre is 1)
	clusterNoise     = 0.3 // norm of the isotropic noise
	searchQueries    = 200
	searchK          = 10
	hybridQueries    = 20
	errorShare       = 10 // one row in errorShare has entity_type 'error'
	pipelineWriters  = 4
	pipelineDelay    = 25 * time.Millisecond
	pipelineDeadline = 3 * time.Minute
	// benchModel is the model name under which the rows' vectors are stored. The Go API's
	// in-process embedder and `cairn serve`, pointed at the bench's Ollama stand-in with
	// --embed-model benchModel, both report ollama/benchModel/768, so both search the same rows.
	benchModel = "bench-clustered"
)

type knowledgeResults struct {
	entities, clusters, queries  int
	label                        string
	indexDef                     string // as the migration created it
	generate, load, index, truth time.Duration
	loadAvg                      [2]string // /proc/loadavg's 1-minute figure at the start and the end
	tableBytes, indexBytes       int64
	sharedBuffers                string

	search, searchFiltered       stats // Go API, Store.Search
	recall, recallFiltered       float64
	raw, rawFiltered             stats // the semantic branch alone as raw SQL, ef_search 100
	rawRecall, rawRecallFiltered float64
	rawPlan, rawPlanFiltered     string
	hybrid, hybridFiltered       stats // hybrid mode, limit 100
	hybridRecall                 float64
	hybridRecallFiltered         float64
	mcp, mcpFiltered             stats // knowledge_search over MCP
	mcpRecall, mcpRecallFiltered float64
	exact, exactFiltered         stats // the exact search, no index
	exactChecked, exactAgree     int   // exact searches in PostgreSQL that found the bench's ground truth
	efs                          []efResult

	pipelines []pipelineResult
}

// efResult is the semantic branch alone, as raw SQL, at one hnsw.ef_search.
type efResult struct {
	ef                 int
	filter, forceIndex bool   // the 10% filter; sequential scans disabled
	plan               string // the planner's choice
	st                 stats
	recall             float64
	queries            int
}

// pipelineEmbedder makes the embedder of a pipeline run; counts, when not nil, reports the embed
// calls made and the texts they carried, and done releases what it started.
type pipelineEmbedder func() (e embed.Embedder, counts func() (calls, inputs int), done func(), err error)

type pipelineResult struct {
	name            string
	rows            int
	writes, total   time.Duration // until the last write committed, until the last vector was written
	calls, inputs   int           // embed calls and the texts they carried (0 when not counted)
	jobs            int64         // River jobs queued
	lagP50, lagP95  time.Duration // commit to vector, per row
	embedded, other int64
}

// benchKnowledge runs the search benchmarks on kn entities, then the pipeline benchmarks on
// pipelineRows fresh entities (the search rows are truncated first).
func benchKnowledge(ctx context.Context, pool *pgxpool.Pool, bin, url string, kn, pipelineRows int) (*knowledgeResults, error) {
	quiet := slog.New(slog.DiscardHandler)
	if err := jobs.Migrate(ctx, pool, quiet); err != nil {
		return nil, err
	}
	var ok bool
	if err := pool.QueryRow(ctx, `SELECT to_regclass('entities') IS NOT NULL`).Scan(&ok); err != nil {
		return nil, err
	}
	if !ok {
		return nil, errors.New("no entities table: the knowledge migration was deferred (is pgvector installed? make bench runs scripts/ensure-pgvector.sh)")
	}
	// A pool as `cairn serve` makes it (10 connections, no server-side prepared statements, so
	// each search is planned for its own parameters).
	cp, err := cairnPool(ctx, url)
	if err != nil {
		return nil, err
	}
	defer cp.Close()

	label := knowledge.ModelLabel((&fixedEmbedder{}).Info())
	r := &knowledgeResults{entities: kn, clusters: max(1, kn/clusterSize), queries: searchQueries, label: label}
	r.loadAvg[0] = loadAverage()
	t := time.Now()
	data := newClusters(r.clusters, rand.New(rand.NewPCG(5, 6)))
	rows, types := data.rows(kn, rand.New(rand.NewPCG(7, 8)))
	// The measured queries, and as many others to warm the caches with.
	queries := make([][]float32, searchQueries)
	warm := make([][]float32, searchQueries)
	qrng := rand.New(rand.NewPCG(9, 10))
	for i := range queries {
		queries[i] = data.point(qrng, qrng.IntN(r.clusters))
		warm[i] = data.point(qrng, qrng.IntN(r.clusters))
	}
	r.generate = time.Since(t)
	if err := loadEntities(ctx, pool, rows, types, label, r); err != nil {
		return nil, fmt.Errorf("load entities: %w", err)
	}
	t = time.Now()
	truth, truthFiltered := groundTruth(rows, types, queries)
	r.truth = time.Since(t)

	qtext := func(i int) string { return fmt.Sprintf("q%d", i) }
	vecs := make(map[string][]float32, 2*len(queries))
	for i, q := range queries {
		vecs[qtext(i)] = q
		vecs[warmText(i)] = warm[i]
	}
	store := knowledge.New(cp, knowledge.Options{Embedder: &fixedEmbedder{vecs: vecs}, Logger: quiet})
	if err := benchSearch(ctx, store, cp, queries, qtext, truth, truthFiltered, r); err != nil {
		return nil, fmt.Errorf("search: %w", err)
	}
	if err := benchExact(ctx, cp, queries, truth, truthFiltered, r); err != nil {
		return nil, fmt.Errorf("exact search: %w", err)
	}
	if err := benchEfSearch(ctx, cp, queries, truth, truthFiltered, r); err != nil {
		return nil, fmt.Errorf("ef_search: %w", err)
	}
	if err := benchSearchMCP(ctx, bin, url, vecs, qtext, truth, truthFiltered, r); err != nil {
		return nil, fmt.Errorf("search over MCP: %w", err)
	}

	// The pipeline, each run on emptied tables.
	ollama := func(delay time.Duration) pipelineEmbedder {
		return func() (embed.Embedder, func() (int, int), func(), error) {
			s := embedtest.New()
			s.SetDelay(delay)
			e, err := embed.NewOllama(embed.Options{Host: s.URL, Model: embed.DefaultModel})
			if err != nil {
				s.Close()
				return nil, nil, nil, err
			}
			return e, func() (int, int) { return s.Calls(), s.Inputs() }, s.Close, nil
		}
	}
	builtin := func() (embed.Embedder, func() (int, int), func(), error) {
		b, err := embed.NewBuiltin(knowledgeDims)
		return b, nil, func() {}, err
	}
	for _, p := range []struct {
		name    string
		emb     pipelineEmbedder
		noIndex bool
		noJobs  bool
	}{
		{"Ollama stand-in (embedtest: Ollama's /api/embed wire format, hashing vectors), answers at once", ollama(0), false, false},
		{fmt.Sprintf("Ollama stand-in, %d ms per call", pipelineDelay.Milliseconds()), ollama(pipelineDelay), false, false},
		{"built-in hashing embedder, in process", builtin, false, false},
		{"Ollama stand-in, answers at once, HNSW index dropped (for information: what maintaining the index costs)", ollama(0), true, false},
		{"the writes alone, no job client working (for information: rows/s is writes/s; the rows stay pending)", ollama(0), false, true},
	} {
		if p.noIndex {
			if _, err := pool.Exec(ctx, `DROP INDEX idx_entities_embedding_hnsw`); err != nil {
				return nil, err
			}
		}
		pr, err := benchPipeline(ctx, pool, url, p.name, pipelineRows, p.emb, !p.noJobs)
		if err != nil {
			return nil, fmt.Errorf("pipeline (%s): %w", p.name, err)
		}
		r.pipelines = append(r.pipelines, pr)
		r.loadAvg[1] = loadAverage()
		if p.noIndex {
			if _, err := pool.Exec(ctx, `TRUNCATE entities, episodes, relations, episode_mentions, knowledge_models RESTART IDENTITY`); err != nil {
				return nil, err
			}
			if _, err := pool.Exec(ctx, r.indexDef); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

// loadAverage is the machine's 1-minute load average: the machine is shared, and these figures
// move with it.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) > 0 {
		return f[0]
	}
	return "?"
}

func cairnPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg := &config.Config{DatabaseURL: url}
	if err := cfg.Normalize(); err != nil {
		return nil, err
	}
	pc, err := cfg.PoolConfig()
	if err != nil {
		return nil, err
	}
	return db.Open(ctx, pc)
}

// clusters generates the synthetic vectors described at the top of the file.
type clusters struct {
	centres [][]float32
	bases   [][]float32 // clusterRank unit vectors per cluster
}

func gaussianUnit(rng *rand.Rand) []float32 {
	v := make([]float32, knowledgeDims)
	for {
		var sum float64
		for i := range v {
			x := rng.NormFloat64()
			v[i] = float32(x)
			sum += x * x
		}
		if sum > 0 {
			inv := float32(1 / math.Sqrt(sum))
			for i := range v {
				v[i] *= inv
			}
			return v
		}
	}
}

func newClusters(n int, rng *rand.Rand) *clusters {
	c := &clusters{}
	for range n {
		c.centres = append(c.centres, gaussianUnit(rng))
		for range clusterRank {
			c.bases = append(c.bases, gaussianUnit(rng))
		}
	}
	return c
}

// point draws a unit vector of cluster k.
func (c *clusters) point(rng *rand.Rand, k int) []float32 {
	v := slices.Clone(c.centres[k])
	sub := clusterSpread / math.Sqrt(clusterRank)
	for j := range clusterRank {
		z := float32(rng.NormFloat64() * sub)
		for i, b := range c.bases[k*clusterRank+j] {
			v[i] += z * b
		}
	}
	noise := clusterNoise / math.Sqrt(knowledgeDims)
	var sum float64
	for i := range v {
		v[i] += float32(rng.NormFloat64() * noise)
		sum += float64(v[i]) * float64(v[i])
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
	return v
}

var entityTypes = [...]string{"service", "file", "person", "module", "host", "library", "team", "config", "job"}

// rows draws n rows, each of a random cluster; every errorShare-th row is of type 'error', the
// others of one of entityTypes (so the filter is independent of where a row lies).
func (c *clusters) rows(n int, rng *rand.Rand) ([][]float32, []string) {
	vs := make([][]float32, n)
	ts := make([]string, n)
	for i := range vs {
		vs[i] = c.point(rng, rng.IntN(len(c.centres)))
		if i%errorShare == 0 {
			ts[i] = "error"
		} else {
			ts[i] = entityTypes[i%len(entityTypes)]
		}
	}
	return vs, ts
}

// loadEntities writes the rows as cairn's embed workers leave them (embedded, under label) with
// one binary COPY, with the HNSW index dropped, then rebuilds the index as the migration defines
// it and times both. Row i gets id i+1.
func loadEntities(ctx context.Context, pool *pgxpool.Pool, rows [][]float32, types []string, label string, r *knowledgeResults) error {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return err
	}
	defer conn.Release()
	if err := conn.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE indexname = 'idx_entities_embedding_hnsw'`).Scan(&r.indexDef); err != nil {
		return fmt.Errorf("read the HNSW index definition: %w", err)
	}
	if _, err := conn.Exec(ctx, `DROP INDEX idx_entities_embedding_hnsw`); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(writeEntitiesCopy(pw, rows, types, label)) }()
	t := time.Now()
	// cairn.embed_writer tells the trigger that these vectors are cairn's own (it still computes
	// content_hash); embedded_hash stays NULL, which search does not look at.
	if _, err := conn.Exec(ctx, `BEGIN; SELECT set_config('cairn.embed_writer', 'on', true)`); err != nil {
		pr.Close()
		return err
	}
	if _, err := conn.Conn().PgConn().CopyFrom(ctx, pr,
		`COPY entities (id, name, entity_type, context, embedding, embedding_model, embed_state) FROM STDIN (FORMAT binary)`); err != nil {
		pr.CloseWithError(err)
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return err
	}
	// The model the kind's vectors come from, as the first vectors cairn writes record it.
	info := (&fixedEmbedder{}).Info()
	if _, err := conn.Exec(ctx, `INSERT INTO knowledge_models (kind, provider, model, dimensions) VALUES ('entity', $1, $2, $3)`,
		info.Provider, info.Model, info.Dimensions); err != nil {
		_, _ = conn.Exec(ctx, "ROLLBACK")
		return err
	}
	if _, err := conn.Exec(ctx, `COMMIT`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, `SELECT setval(pg_get_serial_sequence('entities', 'id'), $1)`, int64(len(rows))); err != nil {
		return err
	}
	r.load = time.Since(t)
	t = time.Now()
	if _, err := conn.Exec(ctx, `SET maintenance_work_mem = '1GB'`); err != nil {
		return err
	}
	if _, err := conn.Exec(ctx, r.indexDef); err != nil {
		return fmt.Errorf("build the HNSW index: %w", err)
	}
	r.index = time.Since(t)
	if _, err := conn.Exec(ctx, `RESET maintenance_work_mem; ANALYZE entities`); err != nil {
		return err
	}
	return conn.QueryRow(ctx, `SELECT pg_table_size('entities'), pg_relation_size('idx_entities_embedding_hnsw'), current_setting('shared_buffers')`).
		Scan(&r.tableBytes, &r.indexBytes, &r.sharedBuffers)
}

// writeEntitiesCopy writes COPY's binary format: a header, then per row a field count and
// length-prefixed fields (text as its bytes; vector as int16 dimensions, int16 0, float4s, all
// big-endian, as pgvector's vector_recv reads it), then -1.
func writeEntitiesCopy(w io.Writer, rows [][]float32, types []string, label string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	var buf []byte
	buf = append(buf, "PGCOPY\n\xff\r\n\x00"...)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	buf = binary.BigEndian.AppendUint32(buf, 0)
	text := func(s string) {
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(s)))
		buf = append(buf, s...)
	}
	for i, v := range rows {
		buf = binary.BigEndian.AppendUint16(buf, 7)
		buf = binary.BigEndian.AppendUint32(buf, 8)
		buf = binary.BigEndian.AppendUint64(buf, uint64(i+1))
		text(fmt.Sprintf("entity-%d", i+1))
		text(types[i])
		text(fmt.Sprintf("synthetic %s entity number %d", types[i], i+1))
		buf = binary.BigEndian.AppendUint32(buf, uint32(4+4*len(v)))
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(v)))
		buf = binary.BigEndian.AppendUint16(buf, 0)
		for _, x := range v {
			buf = binary.BigEndian.AppendUint32(buf, math.Float32bits(x))
		}
		text(label)
		text("embedded")
		if _, err := bw.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
	}
	buf = binary.BigEndian.AppendUint16(buf, 0xffff)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

// groundTruth finds each query's exact searchK nearest rows by cosine distance, among all rows
// and among the 'error' rows, by brute force over the vectors as loaded. The ids are row+1.
// benchExact checks a sample against PostgreSQL's own exact search.
func groundTruth(rows [][]float32, types []string, queries [][]float32) (all, filtered [][]int64) {
	norms := make([]float64, len(rows))
	for i, v := range rows {
		norms[i] = math.Sqrt(dot(v, v))
	}
	all = make([][]int64, len(queries))
	filtered = make([][]int64, len(queries))
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				qi := int(next.Add(1)) - 1
				if qi >= len(queries) {
					return
				}
				q := queries[qi]
				qn := math.Sqrt(dot(q, q))
				var top, topF nearest
				for i, v := range rows {
					d := 1 - dot(q, v)/(qn*norms[i])
					top.add(d, int64(i+1))
					if types[i] == "error" {
						topF.add(d, int64(i+1))
					}
				}
				all[qi], filtered[qi] = top.ids(), topF.ids()
			}
		}()
	}
	wg.Wait()
	return all, filtered
}

func dot(a, b []float32) float64 {
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return float64(s0) + float64(s1) + float64(s2) + float64(s3)
}

// nearest keeps the searchK smallest distances seen, sorted.
type nearest struct {
	d  [searchK]float64
	id [searchK]int64
	n  int
}

func (t *nearest) add(d float64, id int64) {
	if t.n == searchK && d >= t.d[searchK-1] {
		return
	}
	i := min(t.n, searchK-1)
	if t.n < searchK {
		t.n++
	}
	for ; i > 0 && t.d[i-1] > d; i-- {
		t.d[i], t.id[i] = t.d[i-1], t.id[i-1]
	}
	t.d[i], t.id[i] = d, id
}

func (t *nearest) ids() []int64 { return slices.Clone(t.id[:t.n]) }

// recallOf is the share of truth found in got.
func recallOf(got, truth []int64) float64 {
	n := 0
	for _, id := range got {
		if slices.Contains(truth, id) {
			n++
		}
	}
	return float64(n) / float64(len(truth))
}

// fixedEmbedder embeds the benchmark's query texts as their prepared vectors.
type fixedEmbedder struct{ vecs map[string][]float32 }

func (f *fixedEmbedder) Embed(_ context.Context, _ embed.Kind, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	for i, t := range texts {
		v, ok := f.vecs[t]
		if !ok {
			return nil, &embed.PermanentError{Reason: "not a benchmark query: " + t, Inputs: []int{i}}
		}
		out[i] = v
	}
	return out, nil
}

// warmText names the i-th warm-up query.
func warmText(i int) string { return fmt.Sprintf("w%d", i) }

func (f *fixedEmbedder) Info() embed.Info {
	return embed.Info{Provider: embed.ProviderOllama, Model: benchModel, Dimensions: knowledgeDims}
}

// benchSearch times Store.Search in semantic mode, the unfiltered and the filtered query taking
// turns, and computes their recall.
func benchSearch(ctx context.Context, store *knowledge.Store, pool *pgxpool.Pool, queries [][]float32, qtext func(int) string, truth, truthF [][]int64, r *knowledgeResults) error {
	var rec, recF, rawRec, rawRecF float64
	search := func(filter string, sum *float64, truth [][]int64) func(int) error {
		return func(i int) error {
			i %= len(truth)
			res, err := store.Search(ctx, knowledge.SearchQuery{Query: qtext(i), EntityType: filter, Limit: searchK, Mode: knowledge.ModeSemantic})
			if err != nil {
				return err
			}
			if res.Mode != knowledge.ModeSemantic || len(res.Results) != searchK {
				return fmt.Errorf("query %d (filter %q): mode %s (%s), %d results", i, filter, res.Mode, res.Fallback, len(res.Results))
			}
			if sum != nil {
				ids := make([]int64, len(res.Results))
				for j, h := range res.Results {
					ids[j] = h.ID
				}
				*sum += recallOf(ids, truth[i])
			}
			return nil
		}
	}
	// Warm up with other queries of the same kind, so that the caches hold what they would in
	// steady use, but not the very pages the measured queries touch.
	warm := func(filter string) func(int) error {
		return func(i int) error {
			_, err := store.Search(ctx, knowledge.SearchQuery{Query: warmText(i), EntityType: filter, Limit: searchK, Mode: knowledge.ModeSemantic})
			return err
		}
	}
	for i := range r.queries {
		if err := errorsOf(warm("")(i), warm("error")(i)); err != nil {
			return err
		}
	}
	// The floor: the semantic branch alone, as raw SQL sent the way Store.Search sends its
	// statement, at the same ef_search.
	errType := "error"
	raw := func(filter *string, sum *float64, truth [][]int64) func(int) error {
		return func(i int) error {
			ids, err := rawBranch(ctx, pool, 100, false, knowledge.VectorText(queries[i]), r.label, filter)
			*sum += recallOf(ids, truth[i])
			return err
		}
	}
	var err error
	if r.rawPlan, err = explainBranch(ctx, pool, 100, false, knowledge.VectorText(queries[0]), r.label, nil); err != nil {
		return err
	}
	if r.rawPlanFiltered, err = explainBranch(ctx, pool, 100, false, knowledge.VectorText(queries[0]), r.label, &errType); err != nil {
		return err
	}
	s := measureEach(r.queries, search("", &rec, truth), search("error", &recF, truthF), raw(nil, &rawRec, truth), raw(&errType, &rawRecF, truthF))
	r.search, r.searchFiltered, r.raw, r.rawFiltered = s[0], s[1], s[2], s[3]
	q := float64(r.queries)
	r.recall, r.recallFiltered, r.rawRecall, r.rawRecallFiltered = rec/q, recF/q, rawRec/q, rawRecF/q

	// The default mode with the largest page: hybrid asks each list for 2 × limit candidates, so
	// ef_search becomes 200. The keyword list finds nothing for "q17", so the first 10 hits are
	// the semantic list's.
	hybrid := func(filter string, sum *float64, truth [][]int64) func(int) error {
		return func(i int) error {
			res, err := store.Search(ctx, knowledge.SearchQuery{Query: qtext(i), EntityType: filter, Limit: knowledge.MaxSearch})
			if err != nil {
				return err
			}
			if res.Mode != knowledge.ModeHybrid || len(res.Results) < searchK {
				return fmt.Errorf("hybrid query %d (filter %q): mode %s (%s), %d results", i, filter, res.Mode, res.Fallback, len(res.Results))
			}
			ids := make([]int64, searchK)
			for j := range ids {
				ids[j] = res.Results[j].ID
			}
			*sum += recallOf(ids, truth[i])
			return nil
		}
	}
	var hr, hrF float64
	s = measureEach(hybridQueries, hybrid("", &hr, truth), hybrid("error", &hrF, truthF))
	r.hybrid, r.hybridFiltered = s[0], s[1]
	r.hybridRecall, r.hybridRecallFiltered = hr/hybridQueries, hrF/hybridQueries
	return nil
}

// branchSQL is the entity half of the search's semantic branch (see knowledge/search.go).
const branchSQL = `SELECT id FROM entities WHERE embedding_model = $2 AND ($3::text IS NULL OR entity_type = $3)
	ORDER BY embedding <=> $1::vector LIMIT 10`

// rawBranch runs branchSQL as Store.Search sends its statement: in one batch (one round trip)
// with the same settings, at the given ef_search.
// With forceIndex, sequential scans are disabled, so that the planner takes the HNSW index.
func rawBranch(ctx context.Context, pool *pgxpool.Pool, ef int, forceIndex bool, vec, label string, filter *string) ([]int64, error) {
	setup := []string{"BEGIN READ ONLY", fmt.Sprintf("SET LOCAL hnsw.ef_search = %d", ef), "SET LOCAL hnsw.iterative_scan = relaxed_order"}
	if forceIndex {
		setup = append(setup, "SET LOCAL enable_seqscan = off")
	}
	b := &pgx.Batch{}
	for _, sql := range setup {
		b.Queue(sql)
	}
	b.Queue(branchSQL, vec, label, filter)
	b.Queue("COMMIT")
	br := pool.SendBatch(ctx, b)
	defer br.Close()
	for range setup {
		if _, err := br.Exec(); err != nil {
			return nil, err
		}
	}
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return nil, err
	}
	_, err = br.Exec()
	return ids, err
}

// benchExact runs branchSQL with index scans off — a sequential scan computing every distance —
// for a sample of the queries: its latency (what the index saves) and whether it finds the
// bench's ground truth.
func benchExact(ctx context.Context, pool *pgxpool.Pool, queries [][]float32, truth, truthF [][]int64, r *knowledgeResults) error {
	const sample = 10
	exact := func(filter *string, truth [][]int64) func(int) error {
		return func(i int) error {
			return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL enable_indexscan = off`); err != nil {
					return err
				}
				rows, err := tx.Query(ctx, branchSQL, knowledge.VectorText(queries[i]), r.label, filter)
				if err != nil {
					return err
				}
				ids, err := pgx.CollectRows(rows, pgx.RowTo[int64])
				if err != nil {
					return err
				}
				r.exactChecked++
				if recallOf(ids, truth[i]) == 1 {
					r.exactAgree++
				}
				return nil
			})
		}
	}
	errType := "error"
	s := measureEach(min(sample, len(queries)), exact(nil, truth), exact(&errType, truthF))
	r.exact, r.exactFiltered = s[0], s[1]
	return nil
}

// benchEfSearch runs the semantic branch alone as raw SQL at other hnsw.ef_search values than
// Store.Search's 100 (it sets max(100, candidates)), to show what recall costs and where the
// planner stops using the index; where it scans the table instead, the same again with
// sequential scans disabled.
// A plan without the HNSW index is an exact search, slow: it gets efExactQueries queries only.
func benchEfSearch(ctx context.Context, pool *pgxpool.Pool, queries [][]float32, truth, truthF [][]int64, r *knowledgeResults) error {
	const efExactQueries = 10
	errType := "error"
	for _, ef := range []int{40, 200, 400} {
		for _, filter := range []*string{nil, &errType} {
			for _, force := range []bool{false, true} {
				e := efResult{ef: ef, filter: filter != nil, forceIndex: force}
				truth := truth
				if filter != nil {
					truth = truthF
				}
				var err error
				if e.plan, err = explainBranch(ctx, pool, ef, force, knowledge.VectorText(queries[0]), r.label, filter); err != nil {
					return err
				}
				n := len(queries)
				if e.plan != planHNSW {
					n = min(n, efExactQueries)
				}
				e.st = measure(n, func(i int) error {
					ids, err := rawBranch(ctx, pool, ef, force, knowledge.VectorText(queries[i]), r.label, filter)
					e.recall += recallOf(ids, truth[i])
					return err
				})
				e.recall /= float64(n)
				e.queries = n
				r.efs = append(r.efs, e)
				if e.plan != planSeq {
					break // only a sequential scan is worth disabling
				}
			}
		}
	}
	return nil
}

const (
	planHNSW = "HNSW index"
	planSeq  = "sequential scan, then sort (exact)"
)

// explainBranch returns the name of the plan rawBranch would run.
func explainBranch(ctx context.Context, pool *pgxpool.Pool, ef int, forceIndex bool, vec, label string, filter *string) (string, error) {
	var plan string
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL hnsw.ef_search = %d; SET LOCAL hnsw.iterative_scan = relaxed_order; SET LOCAL enable_seqscan = %t", ef, !forceIndex)); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "EXPLAIN "+branchSQL, vec, label, filter)
		if err != nil {
			return err
		}
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		plan = planName(strings.Join(lines, "\n"))
		return err
	})
	return plan, err
}

// planName names the access path of an EXPLAIN of branchSQL.
func planName(explain string) string {
	switch {
	case strings.Contains(explain, "idx_entities_embedding_hnsw"):
		return planHNSW
	case strings.Contains(explain, "entities_type_name_key"):
		return "btree on entity_type, then sort (exact)"
	case strings.Contains(explain, "Seq Scan"):
		return planSeq
	default:
		return "other"
	}
}

// benchSearchMCP times knowledge_search through `cairn serve` over stdio, with cairn embedding
// the query through an Ollama stand-in that answers the benchmark's query texts with their
// prepared vectors.
func benchSearchMCP(ctx context.Context, bin, url string, vecs map[string][]float32, qtext func(int) string, truth, truthF [][]int64, r *knowledgeResults) error {
	ollama := httptest.NewServer(fixedOllama(vecs))
	defer ollama.Close()
	cmd := exec.Command(bin, "--log-level", "warn", "serve", "--database-url", url,
		"--embedder", "ollama", "--ollama-host", ollama.URL, "--embed-model", benchModel)
	cmd.Stderr = os.Stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return fmt.Errorf("start cairn: %w", err)
	}
	defer cs.Close()
	var rec, recF float64
	search := func(filter string, sum *float64, truth [][]int64) func(int) error {
		return func(i int) error {
			i %= len(truth)
			args := map[string]any{"query": qtext(i), "mode": "semantic", "limit": searchK}
			if filter != "" {
				args["entity_type"] = filter
			}
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "knowledge_search", Arguments: args})
			if err != nil {
				return err
			}
			if res.IsError || len(res.Content) == 0 {
				return fmt.Errorf("knowledge_search: tool error: %v", res.Content)
			}
			var out knowledge.SearchResult
			if err := json.Unmarshal([]byte(res.Content[0].(*sdk.TextContent).Text), &out); err != nil {
				return fmt.Errorf("knowledge_search result: %w", err)
			}
			if out.Mode != knowledge.ModeSemantic || len(out.Results) != searchK || out.Model != r.label {
				return fmt.Errorf("query %d (filter %q): mode %s (%s), model %s, %d results", i, filter, out.Mode, out.Fallback, out.Model, len(out.Results))
			}
			if sum != nil {
				ids := make([]int64, len(out.Results))
				for j, h := range out.Results {
					ids[j] = h.ID
				}
				*sum += recallOf(ids, truth[i])
			}
			return nil
		}
	}
	warm := func(filter string) func(int) error {
		return func(i int) error {
			args := map[string]any{"query": warmText(i), "mode": "semantic", "limit": searchK}
			if filter != "" {
				args["entity_type"] = filter
			}
			res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "knowledge_search", Arguments: args})
			if err == nil && res.IsError {
				err = fmt.Errorf("knowledge_search: tool error: %v", res.Content)
			}
			return err
		}
	}
	for i := range 50 {
		if err := errorsOf(warm("")(i), warm("error")(i)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	s := measureEach(r.queries, search("", &rec, truth), search("error", &recF, truthF))
	r.mcp, r.mcpFiltered = s[0], s[1]
	r.mcpRecall, r.mcpRecallFiltered = rec/float64(r.queries), recF/float64(r.queries)
	return nil
}

// fixedOllama answers Ollama's /api/version, /api/show and /api/embed for the model benchModel,
// embedding the benchmark's query texts as their prepared vectors.
func fixedOllama(vecs map[string][]float32) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/api/version", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]string{"version": embedtest.Version})
	})
	mux.HandleFunc("POST /api/show", func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"model_info": map[string]any{"bench.embedding_length": knowledgeDims}, "capabilities": []string{"embedding"}})
	})
	mux.HandleFunc("POST /api/embed", func(w http.ResponseWriter, req *http.Request) {
		var in struct {
			Model string   `json:"model"`
			Input []string `json:"input"`
		}
		if err := json.NewDecoder(req.Body).Decode(&in); err != nil {
			http.Error(w, `{"error": "bad request"}`, http.StatusBadRequest)
			return
		}
		out := make([][]float32, len(in.Input))
		for i, t := range in.Input {
			v, ok := vecs[t]
			if !ok {
				http.Error(w, `{"error": "not a benchmark query"}`, http.StatusBadRequest)
				return
			}
			out[i] = v
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"model": in.Model, "embeddings": out})
	})
	return mux
}

// benchPipeline empties the knowledge and job tables, starts a River client with the embed worker
// on a pool like cairn's, then has pipelineWriters writers upsert rows entities through a Store
// that queues an embed job in each write's transaction, and times from the first write until no
// row is left to embed.
func benchPipeline(ctx context.Context, pool *pgxpool.Pool, url, name string, rows int, newEmbedder pipelineEmbedder, work bool) (pipelineResult, error) {
	pr := pipelineResult{name: name, rows: rows}
	if _, err := pool.Exec(ctx, `TRUNCATE entities, episodes, relations, episode_mentions, knowledge_models RESTART IDENTITY; TRUNCATE river_job`); err != nil {
		return pr, err
	}
	e, counts, closeEmbedder, err := newEmbedder()
	if err != nil {
		return pr, err
	}
	defer closeEmbedder()
	cp, err := cairnPool(ctx, url)
	if err != nil {
		return pr, err
	}
	defer cp.Close()
	quiet := slog.New(slog.DiscardHandler)
	jo := jobs.Options{Logger: quiet}
	ins, err := jobs.NewInserter(cp, jo)
	if err != nil {
		return pr, err
	}
	store := knowledge.New(cp, knowledge.Options{Embedder: e, Queue: jobs.EmbedQueue{Client: ins}, Logger: quiet})
	reg := jobs.NewRegistry()
	if err := jobs.AddEmbedding(reg, store, jobs.EmbedOptions{Logger: quiet}); err != nil {
		return pr, err
	}
	if work {
		jc, err := jobs.Start(ctx, cp, reg, jo)
		if err != nil {
			return pr, err
		}
		defer func() { _ = jc.Stop(context.WithoutCancel(ctx)) }()
	}

	// Texts made beforehand, about 200 bytes each: a short summary of the entity.
	rng := rand.New(rand.NewPCG(11, 12))
	summaries := make([]string, rows)
	for i := range summaries {
		summaries[i] = words(rng, 200)
	}
	var firstErr atomic.Value
	var wg sync.WaitGroup
	t0 := time.Now()
	var writesDone atomic.Int64
	for w := range pipelineWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < rows; i += pipelineWriters {
				_, err := store.UpsertEntity(ctx, knowledge.EntityInput{Name: fmt.Sprintf("pipeline-%d", i),
					Type: entityTypes[i%len(entityTypes)], Summary: &summaries[i]})
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		writesDone.Store(int64(time.Since(t0)))
	}()
	for {
		time.Sleep(20 * time.Millisecond)
		if err, _ := firstErr.Load().(error); err != nil {
			return pr, err
		}
		var pending, total int64
		if err := pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE embed_state = 'pending'), count(*) FROM entities`).Scan(&pending, &total); err != nil {
			return pr, err
		}
		if d := writesDone.Load(); d > 0 && (pending == 0 || !work) && total == int64(rows) {
			pr.total, pr.writes = time.Since(t0), time.Duration(d)
			break
		}
		if time.Since(t0) > pipelineDeadline {
			return pr, fmt.Errorf("%d of %d rows still pending after %s", pending, total, pipelineDeadline)
		}
	}
	if counts != nil {
		pr.calls, pr.inputs = counts()
	}
	var p50, p95 float64
	err = pool.QueryRow(ctx, `SELECT count(*) FILTER (WHERE embed_state = 'embedded'), count(*) FILTER (WHERE embed_state <> 'embedded'),
			coalesce(percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM embedded_at - created_at)), 0),
			coalesce(percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM embedded_at - created_at)), 0)
		FROM entities`).Scan(&pr.embedded, &pr.other, &p50, &p95)
	if err != nil {
		return pr, err
	}
	pr.lagP50, pr.lagP95 = time.Duration(p50*float64(time.Second)), time.Duration(p95*float64(time.Second))
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = $1`, jobs.EmbedArgs{}.Kind()).Scan(&pr.jobs); err != nil {
		return pr, err
	}
	if pr.other > 0 && work {
		return pr, fmt.Errorf("%d rows ended in another state than embedded", pr.other)
	}
	return pr, nil
}

func printKnowledge(w io.Writer, r *knowledgeResults) {
	recall := func(x float64) string { return fmt.Sprintf("%.3f", x) }
	fmt.Fprintf(w, "\n| knowledge_search by meaning (mode semantic, limit 10), %d entities × %d dimensions, HNSW m=16 ef_construction=64 | median | p95 | recall@10 | goal |\n|---|---|---|---|---|\n",
		r.entities, knowledgeDims)
	fmt.Fprintf(w, "| Go API (`Store.Search`), no filter | %s | %s | %s | median under 10 ms, recall ≥ 0.95 |\n", ms(r.search.median), ms(r.search.p95), recall(r.recall))
	fmt.Fprintf(w, "| Go API, entity_type filter keeping 10%% of the rows | %s | %s | %s | median under 10 ms, recall ≥ 0.95 |\n", ms(r.searchFiltered.median), ms(r.searchFiltered.p95), recall(r.recallFiltered))
	fmt.Fprintf(w, "| floor: the search's semantic branch alone as raw SQL, same settings (hnsw.ef_search 100), one round trip: no filter / 10%% filter (plan: %s / %s) | %s / %s | %s / %s | %s / %s | |\n",
		r.rawPlan, r.rawPlanFiltered, ms(r.raw.median), ms(r.rawFiltered.median), ms(r.raw.p95), ms(r.rawFiltered.p95), recall(r.rawRecall), recall(r.rawRecallFiltered))
	fmt.Fprintf(w, "| Go API over the floor, median: no filter / 10%% filter | %.2fx / %.2fx | | | |\n", ratio(r.search.median, r.raw.median), ratio(r.searchFiltered.median, r.rawFiltered.median))
	fmt.Fprintf(w, "| Go API, hybrid (the default mode), limit 100 (200 candidates from each list, hnsw.ef_search 100): no filter / 10%% filter, %d queries | %s / %s | %s / %s | %s / %s | |\n", hybridQueries,
		ms(r.hybrid.median), ms(r.hybridFiltered.median), ms(r.hybrid.p95), ms(r.hybridFiltered.p95), recall(r.hybridRecall), recall(r.hybridRecallFiltered))
	fmt.Fprintf(w, "| MCP over stdio (`knowledge_search`; `cairn serve` embeds the query over HTTP through the bench's Ollama stand-in), no filter | %s | %s | %s | |\n", ms(r.mcp.median), ms(r.mcp.p95), recall(r.mcpRecall))
	fmt.Fprintf(w, "| MCP over stdio, 10%% filter | %s | %s | %s | |\n", ms(r.mcpFiltered.median), ms(r.mcpFiltered.p95), recall(r.mcpRecallFiltered))
	fmt.Fprintf(w, "| exact search (index off: sequential scan, every distance), no filter, median of %d | %s | %s | 1 | |\n", r.exactChecked/2, ms(r.exact.median), ms(r.exact.p95))
	fmt.Fprintf(w, "| exact search, 10%% filter | %s | %s | 1 | |\n", ms(r.exactFiltered.median), ms(r.exactFiltered.p95))
	for _, e := range r.efs {
		what := "no filter"
		if e.filter {
			what = "10% filter"
		}
		if e.forceIndex {
			what += ", sequential scans disabled"
		}
		fmt.Fprintf(w, "| the floor at hnsw.ef_search = %d, %s: plan %s, %d queries | %s | %s | %s | for information |\n",
			e.ef, what, e.plan, e.queries, ms(e.st.median), ms(e.st.p95), recall(e.recall))
	}
	fmt.Fprintf(w, "| loading: synthetic vectors generated / one binary COPY (HNSW index dropped) / index built (maintenance_work_mem 1GB) / exact neighbours by brute force in Go | %.1f s / %.1f s / %.1f s / %.1f s | | | |\n",
		r.generate.Seconds(), r.load.Seconds(), r.index.Seconds(), r.truth.Seconds())
	fmt.Fprintf(w, "| table (with TOAST) / HNSW index / shared_buffers | %.0f MB / %.0f MB / %s | | | |\n",
		float64(r.tableBytes)/(1<<20), float64(r.indexBytes)/(1<<20), r.sharedBuffers)
	fmt.Fprintf(w, "\nData: %d clusters of about %d rows, each row its cluster's centre plus a random offset in a %d-dimensional subspace of the cluster (norm %.1f) plus isotropic noise (norm %.1f), normalized; stored under model %s. "+
		"Queries: %d fresh points drawn the same way, embedded as their prepared vectors. Recall is against the exact nearest rows computed by brute force in the bench; "+
		"PostgreSQL's own exact search (index off) found the same rows in %d of %d sampled queries. "+
		"The machine is shared (%d CPUs): its 1-minute load average was %s at the start of this section and %s at its end.\n",
		r.clusters, clusterSize, clusterRank, clusterSpread, clusterNoise, r.label, r.queries, r.exactAgree, r.exactChecked, runtime.NumCPU(), r.loadAvg[0], r.loadAvg[1])

	fmt.Fprintf(w, "\n| embed pipeline, commit to vector: %d entities upserted by %d writers (`Store.UpsertEntity`, an embed job queued in each write), River embed queue in the same process (%d workers, batch %d); each run on emptied tables | rows/s | writes committed/s | embed calls (mean batch) | River jobs | per row, commit → vector: median / p95 | goal |\n|---|---|---|---|---|---|---|\n",
		r.pipelines[0].rows, pipelineWriters, jobs.DefaultEmbedWorkers, embed.DefaultBatchSize)
	for i, p := range r.pipelines {
		goal := ""
		switch i {
		case 0:
			goal = "≥ 1,000 rows/s"
		case 1:
			goal = "≥ 500 rows/s"
		}
		calls, lag := "not counted", ms(p.lagP50)+" / "+ms(p.lagP95)
		if p.calls > 0 {
			calls = fmt.Sprintf("%d (%.1f)", p.calls, float64(p.inputs)/float64(p.calls))
		}
		if p.embedded == 0 {
			calls, lag = "none", "none"
		}
		fmt.Fprintf(w, "| %s | %.0f | %.0f rows/s | %s | %d | %s | %s |\n", p.name, float64(p.rows)/p.total.Seconds(),
			float64(p.rows)/p.writes.Seconds(), calls, p.jobs, lag, goal)
	}
	fmt.Fprintf(w, "\nrows/s counts from the first write until no row is pending. The stand-in answers calls concurrently; an Ollama on one GPU runs them about one at a time, so there the embed calls × the time per call bound the run.\n")
}
