package knowledge

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/internal/embed"
)

// EmbedOptions bound one EmbedPending run; zero values are the defaults.
type EmbedOptions struct {
	// Batch is how many rows go into one embed call; default embed.DefaultBatchSize.
	Batch int
	// Lease is how long claimed rows are kept from other workers while their call runs; default
	// 5 minutes. A worker that dies leaves them to be claimed again when it expires.
	Lease time.Duration
	// Budget is how long to keep claiming batches; default 20 s. More may be left pending.
	Budget time.Duration
}

// EmbedStats is what an EmbedPending run did.
type EmbedStats struct {
	// Embedded counts the vectors written.
	Embedded int
	// Stale counts vectors made but not written, because the text changed meanwhile (the newer
	// text stays pending and is embedded again).
	Stale int
	// Failed counts rows that can never be embedded as they are, now in embed_state 'failed'.
	Failed int
	// More is true when the budget ran out with rows possibly still pending.
	More bool
}

type claimed struct {
	kind string
	id   int64
	hash uuid.UUID
	text string
}

// EmbedPending embeds pending rows, batch by batch, until none is left or the budget is spent.
// The embed call runs outside any transaction; each vector is written only if its row's text is
// unchanged. A *embed.TransientError (Ollama down, slow, 5xx) releases the batch and is returned
// for the caller to retry later; rows that can never be embedded are marked failed with the reason.
func (s *Store) EmbedPending(ctx context.Context, emb embed.Embedder, opts EmbedOptions) (EmbedStats, error) {
	if opts.Batch <= 0 {
		opts.Batch = embed.DefaultBatchSize
	}
	if opts.Lease <= 0 {
		opts.Lease = 5 * time.Minute
	}
	if opts.Budget <= 0 {
		opts.Budget = 20 * time.Second
	}
	dims, err := s.VectorDimensions(ctx)
	if err != nil {
		return EmbedStats{}, err
	}
	var st EmbedStats
	deadline := time.Now().Add(opts.Budget)
	for {
		if time.Now().After(deadline) {
			st.More = true
			return st, nil
		}
		batch, err := s.claim(ctx, opts.Batch, opts.Lease)
		if err != nil {
			return st, err
		}
		if len(batch) == 0 {
			return st, nil
		}
		if err := s.embedBatch(ctx, emb, dims, batch, &st); err != nil {
			return st, err
		}
	}
}

func (s *Store) claim(ctx context.Context, n int, lease time.Duration) ([]claimed, error) {
	rows, err := s.pool.Query(ctx, `SELECT kind, id, content_hash, body FROM cairn_knowledge_claim($1, $2)`, n, lease)
	if err != nil {
		return nil, wrap(err, "claim rows to embed")
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		var c claimed
		return c, r.Scan(&c.kind, &c.id, &c.hash, &c.text)
	})
	if err != nil {
		return nil, wrap(err, "claim rows to embed")
	}
	return cs, nil
}

// embedBatch embeds one claimed batch. Inputs the embedder names as impossible are failed and the
// rest embedded again, so one poison row never holds back its batch.
func (s *Store) embedBatch(ctx context.Context, emb embed.Embedder, dims int, batch []claimed, st *EmbedStats) error {
	info := emb.Info()
	for len(batch) > 0 {
		texts := make([]string, len(batch))
		for i, c := range batch {
			texts[i] = c.text
		}
		vecs, err := emb.Embed(ctx, embed.Document, texts)
		if err == nil {
			if bad := wrongSize(vecs, dims); bad > 0 {
				err = &embed.PermanentError{Reason: fmt.Sprintf(
					"model %s returned %d-dimension vectors but the knowledge graph stores vector(%d): configure a %d-dimension model (--embed-model), or re-embed everything with `cairn reindex --model %s --dims %d`",
					info.Model, bad, dims, dims, info.Model, bad)}
			}
		}
		var perm *embed.PermanentError
		switch {
		case err == nil:
			return s.put(ctx, ModelLabel(info), batch, vecs, st)
		case errors.As(err, &perm) && len(perm.Inputs) > 0:
			bad := make(map[int]bool, len(perm.Inputs))
			for _, i := range perm.Inputs {
				bad[i] = true
			}
			var failed, rest []claimed
			for i, c := range batch {
				if bad[i] {
					failed = append(failed, c)
				} else {
					rest = append(rest, c)
				}
			}
			if err := s.settle(ctx, failed, perm.Reason, "", st); err != nil {
				return err
			}
			batch = rest
		case errors.As(err, &perm):
			s.opts.Logger.Warn("embedding failed for good: rows marked failed", "rows", len(batch), "model", info.String(), "err", err)
			return s.settle(ctx, batch, perm.Reason, ModelLabel(info), st)
		default:
			// Transient or unknown: release the rows so that the retry (or another worker) can claim
			// them at once, and let the caller's backoff decide when.
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			if rerr := s.settle(uctx, batch, "", "", st); rerr != nil {
				s.opts.Logger.Warn("releasing claimed rows failed; their lease expires on its own", "err", rerr)
			}
			return fmt.Errorf("embed %d rows with %s: %w", len(batch), info, err)
		}
	}
	return nil
}

// wrongSize returns the size of the first vector that is not dims long, 0 if all are.
func wrongSize(vecs [][]float32, dims int) int {
	for _, v := range vecs {
		if len(v) != dims {
			return len(v)
		}
	}
	return 0
}

// put writes vectors, one statement per kind; rows whose text changed since the claim are skipped.
func (s *Store) put(ctx context.Context, model string, batch []claimed, vecs [][]float32, st *EmbedStats) error {
	for _, kind := range []string{KindEntity, KindEpisode} {
		var ids []int64
		var hashes []uuid.UUID
		var texts []string
		for i, c := range batch {
			if c.kind == kind {
				ids = append(ids, c.id)
				hashes = append(hashes, c.hash)
				texts = append(texts, VectorText(vecs[i]))
			}
		}
		if len(ids) == 0 {
			continue
		}
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT cairn_knowledge_put_vectors($1, $2, $3, $4, $5)`, kind, ids, hashes, texts, model).Scan(&n); err != nil {
			return wrap(err, "write %d %s vectors", len(ids), kind)
		}
		st.Embedded += n
		st.Stale += len(ids) - n
	}
	return nil
}

// settle marks rows failed with reason (by model, when no input is to blame), or with reason ""
// releases their lease.
func (s *Store) settle(ctx context.Context, rows []claimed, reason, model string, st *EmbedStats) error {
	r, m := nullable(reason), nullable(model)
	for _, kind := range []string{KindEntity, KindEpisode} {
		var ids []int64
		var hashes []uuid.UUID
		for _, c := range rows {
			if c.kind == kind {
				ids = append(ids, c.id)
				hashes = append(hashes, c.hash)
			}
		}
		if len(ids) == 0 {
			continue
		}
		var n int
		if err := s.pool.QueryRow(ctx, `SELECT cairn_knowledge_settle($1, $2, $3, $4, $5)`, kind, ids, hashes, r, m).Scan(&n); err != nil {
			return wrap(err, "settle %d %s rows", len(ids), kind)
		}
		if r != nil {
			st.Failed += n
		}
	}
	return nil
}

// RetryModelFailures queues again the rows that failed for a reason no input was to blame for
// (model missing, wrong size), for after the cause was fixed; cairn calls it at start. Rows whose
// own text cannot be embedded stay failed until their text changes.
func (s *Store) RetryModelFailures(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `WITH e AS (
			UPDATE entities SET embed_state = 'pending', embed_error = NULL, embed_failed_model = NULL
			WHERE embed_state = 'failed' AND embed_failed_model IS NOT NULL RETURNING 1),
		p AS (
			UPDATE episodes SET embed_state = 'pending', embed_error = NULL, embed_failed_model = NULL
			WHERE embed_state = 'failed' AND embed_failed_model IS NOT NULL RETURNING 1)
		SELECT (SELECT count(*) FROM e) + (SELECT count(*) FROM p)`).Scan(&n)
	if err != nil {
		return 0, wrap(err, "queue failed rows again")
	}
	return n, nil
}

// VectorText formats v the way pgvector reads a vector: [x,y,…].
func VectorText(v []float32) string {
	b := make([]byte, 0, len(v)*10+2)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, float64(x), 'g', -1, 32)
	}
	return string(append(b, ']'))
}

// Counts are one kind's rows by embed state.
type Counts struct {
	Total    int64 `json:"total"`
	Embedded int64 `json:"embedded"`
	Pending  int64 `json:"pending"`
	Failed   int64 `json:"failed"`
	// External counts vectors written by SQL (insert_vector) rather than by cairn's embedder.
	External int64 `json:"external"`
	// OtherModel counts rows embedded by a model other than the one in use: search by meaning
	// skips them until `cairn reindex` re-embeds them.
	OtherModel int64 `json:"other_model"`
}

// ModelCount is how many rows of a kind carry vectors of one model.
type ModelCount struct {
	Kind  string `json:"kind"`
	Model string `json:"model"`
	Rows  int64  `json:"rows"`
}

// Failure is a reason rows failed to embed, with how many.
type Failure struct {
	Kind   string `json:"kind"`
	Reason string `json:"reason"`
	Rows   int64  `json:"rows"`
}

// Status is the state of the graph and its embeddings.
type Status struct {
	Provider   string `json:"provider"`
	Model      string `json:"model"`
	Dimensions int    `json:"dimensions"`
	// ModelLabel is what vectors made now are stored under.
	ModelLabel       string `json:"model_label"`
	ColumnDimensions int    `json:"column_dimensions"`
	Entities         Counts `json:"entities"`
	Episodes         Counts `json:"episodes"`
	Relations        int64  `json:"relations"`
	// InvalidRelations are facts that were replaced or ended, kept for history.
	InvalidRelations int64 `json:"invalid_relations"`
	// OldestPending is when the longest-waiting pending row was written; nil if none waits.
	OldestPending        *time.Time   `json:"oldest_pending,omitempty"`
	OldestPendingSeconds float64      `json:"oldest_pending_seconds"`
	Models               []ModelCount `json:"models"`
	Failures             []Failure    `json:"failures"`
	Warnings             []string     `json:"warnings"`
}

const statusSQL = `
SELECT 'entity', count(*), count(*) FILTER (WHERE embed_state = 'embedded'), count(*) FILTER (WHERE embed_state = 'pending'),
	count(*) FILTER (WHERE embed_state = 'failed'), count(*) FILTER (WHERE embed_state = 'external'),
	count(*) FILTER (WHERE embedding IS NOT NULL AND embed_state <> 'external' AND embedding_model IS DISTINCT FROM $1),
	min(updated_at) FILTER (WHERE embed_state = 'pending')
FROM entities
UNION ALL
SELECT 'episode', count(*), count(*) FILTER (WHERE embed_state = 'embedded'), count(*) FILTER (WHERE embed_state = 'pending'),
	count(*) FILTER (WHERE embed_state = 'failed'), count(*) FILTER (WHERE embed_state = 'external'),
	count(*) FILTER (WHERE embedding IS NOT NULL AND embed_state <> 'external' AND embedding_model IS DISTINCT FROM $1),
	min(updated_at) FILTER (WHERE embed_state = 'pending')
FROM episodes`

// Status counts rows by embed state and model and lists why rows failed.
func (s *Store) Status(ctx context.Context) (Status, error) {
	dims, err := s.VectorDimensions(ctx)
	if err != nil {
		return Status{}, err
	}
	st := Status{ColumnDimensions: dims, Models: []ModelCount{}, Failures: []Failure{}, Warnings: []string{}}
	if e := s.opts.Embedder; e != nil {
		i := e.Info()
		st.Provider, st.Model, st.Dimensions, st.ModelLabel = i.Provider, i.Model, i.Dimensions, ModelLabel(i)
		if i.Dimensions != 0 && i.Dimensions != dims {
			st.Warnings = append(st.Warnings, fmt.Sprintf("the embedder makes %d-dimension vectors but the graph stores vector(%d): nothing new can be embedded until the model matches or `cairn reindex --dims %d` runs", i.Dimensions, dims, i.Dimensions))
		}
	} else {
		st.Warnings = append(st.Warnings, "no embedder is configured: search is by keyword only")
	}
	b := &pgx.Batch{}
	b.Queue(statusSQL, st.ModelLabel)
	b.Queue(`SELECT count(*) FILTER (WHERE invalid_at IS NULL), count(*) FILTER (WHERE invalid_at IS NOT NULL) FROM relations`)
	b.Queue(`SELECT kind, model, count(*) FROM (
			SELECT 'entity' AS kind, embedding_model AS model FROM entities WHERE embedding IS NOT NULL
			UNION ALL SELECT 'episode', embedding_model FROM episodes WHERE embedding IS NOT NULL) m
		GROUP BY 1, 2 ORDER BY 1, 3 DESC`)
	b.Queue(`SELECT kind, reason, count(*) FROM (
			SELECT 'entity' AS kind, embed_error AS reason FROM entities WHERE embed_state = 'failed'
			UNION ALL SELECT 'episode', embed_error FROM episodes WHERE embed_state = 'failed') f
		GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10`)
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	rows, err := br.Query()
	if err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	for rows.Next() {
		var kind string
		var c Counts
		var oldest *time.Time
		if err := rows.Scan(&kind, &c.Total, &c.Embedded, &c.Pending, &c.Failed, &c.External, &c.OtherModel, &oldest); err != nil {
			return Status{}, wrap(err, "knowledge status")
		}
		if kind == KindEntity {
			st.Entities = c
		} else {
			st.Episodes = c
		}
		if oldest != nil && (st.OldestPending == nil || oldest.Before(*st.OldestPending)) {
			st.OldestPending = oldest
		}
	}
	if err := rows.Err(); err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	if err := br.QueryRow().Scan(&st.Relations, &st.InvalidRelations); err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	rows, err = br.Query()
	if err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	if st.Models, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ModelCount, error) {
		var m ModelCount
		return m, r.Scan(&m.Kind, &m.Model, &m.Rows)
	}); err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	rows, err = br.Query()
	if err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	if st.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
		var f Failure
		return f, r.Scan(&f.Kind, &f.Reason, &f.Rows)
	}); err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	if st.OldestPending != nil {
		st.OldestPendingSeconds = time.Since(*st.OldestPending).Seconds()
	}
	if n := st.Entities.OtherModel + st.Episodes.OtherModel; n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d rows carry vectors of another model than %s; search by meaning skips them until `cairn reindex` re-embeds them (see models)", n, st.ModelLabel))
	}
	if n := st.Entities.Failed + st.Episodes.Failed; n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d rows failed to embed (see failures): a row whose text is to blame is queued again when its text changes; the rest when cairn restarts, after the cause is fixed", n))
	}
	return st, nil
}
