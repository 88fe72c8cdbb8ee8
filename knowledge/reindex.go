package knowledge

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/embed"
)

// ReindexOptions configure Reindex; zero values are the defaults.
type ReindexOptions struct {
	// Kinds to re-embed; default both.
	Kinds []string
	// Embedder is the new model. Its Info must name the dimensions (probe an Ollama model first).
	Embedder embed.Embedder
	// Batch is how many rows go into one embed call; default embed.DefaultBatchSize.
	Batch int
	// Force re-embeds a kind already embedded with Embedder's model.
	Force bool
	// Progress, if set, is told how far each kind is: rows done and rows to do in this run.
	Progress func(kind string, done, total int64)
	// Phase, if set, is told what the reindex does next (adding columns, building the index,
	// switching), for the operator.
	Phase func(kind, phase string)
}

// ReindexResult says what Reindex did per kind.
type ReindexResult struct {
	Kind string `json:"kind"`
	// From and To are the kind's model labels before and after ("" when none was recorded).
	From string `json:"from"`
	To   string `json:"to"`
	// Embedded counts the rows embedded by this run (a resumed run does not count earlier ones).
	Embedded int64 `json:"embedded"`
	// Failed counts the rows the new model cannot embed; they are failed after the switch.
	Failed int64 `json:"failed"`
	// Resumed is true when the run continued one that had stopped.
	Resumed bool `json:"resumed"`
	// Skipped says why nothing was done, if so.
	Skipped string `json:"skipped,omitempty"`
}

// ReindexBusyError says another reindex is running.
type ReindexBusyError struct{}

// CallerCanFix marks the error as the operator's to fix.
func (*ReindexBusyError) CallerCanFix() {}

func (*ReindexBusyError) Error() string {
	return "another `cairn reindex` is running on this database: wait for it to finish"
}

// ReindexConflictError says a reindex to another model was started and not finished.
type ReindexConflictError struct {
	Kind    string
	Pending string
	Started time.Time
}

// CallerCanFix marks the error as the operator's to fix.
func (*ReindexConflictError) CallerCanFix() {}

func (e *ReindexConflictError) Error() string {
	return fmt.Sprintf("a reindex of %s to %s, started %s, has not finished: run it again with that model to finish it, or with --abort to drop it",
		Plural(e.Kind), e.Pending, e.Started.UTC().Format(time.RFC3339))
}

// reindexLock is the advisory lock one reindex holds ("cairnrx").
const reindexLock int64 = 0x636169726e7278

// catchUpLimit bounds the rows embedded while the table is locked at the switch (one embed call,
// normally none: the fill has just run); more than that go back to the fill, which blocks no one.
const catchUpLimit = 64

// Reindex re-embeds kinds with a new model without downtime: vectors go into shadow columns
// while search keeps answering from the current ones and writes go on; an HNSW index is built
// on them concurrently; then, in one short transaction that makes writes wait only for the rows
// edited meanwhile, the columns are swapped and the kind's model recorded, so every process
// searches and embeds with the new model from that moment. A killed run leaves its progress in
// the shadow columns; running it again with the same model continues where it stopped.
func (s *Store) Reindex(ctx context.Context, opts ReindexOptions) ([]ReindexResult, error) {
	if opts.Embedder == nil {
		return nil, inputErrorf("reindex needs the new model's embedder")
	}
	to := opts.Embedder.Info()
	if to.Dimensions < 1 || to.Dimensions > 2000 {
		return nil, inputErrorf("dimensions %d: an HNSW index takes 1 to 2000 (pass --dims)", to.Dimensions)
	}
	if opts.Batch <= 0 {
		opts.Batch = embed.DefaultBatchSize
	}
	kinds := opts.Kinds
	if len(kinds) == 0 {
		kinds = []string{KindEntity, KindEpisode}
	}
	lock, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("reindex: %w", err)
	}
	defer lock.Release()
	var got bool
	if err := lock.QueryRow(ctx, reindexTryLockSQL, reindexLock).Scan(&got); err != nil {
		return nil, wrap(err, "reindex: take the lock")
	}
	if !got {
		return nil, &ReindexBusyError{}
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := lock.Exec(uctx, reindexUnlockSQL, reindexLock); err != nil {
			lock.Conn().Close(uctx) // the session's end drops the lock
		}
	}()

	var results []ReindexResult
	for _, kind := range kinds {
		r, err := s.reindexKind(ctx, kind, to, opts)
		if err != nil {
			return results, err
		}
		results = append(results, r)
	}
	return results, nil
}

func (s *Store) reindexKind(ctx context.Context, kind string, to embed.Info, opts ReindexOptions) (ReindexResult, error) {
	phase := func(p string) {
		if opts.Phase != nil {
			opts.Phase(kind, p)
		}
	}
	t := Plural(kind)
	r := ReindexResult{Kind: kind, To: ModelLabel(to)}
	s.forgetModels()
	models, err := s.Models(ctx)
	if err != nil {
		return r, err
	}
	if rec, ok := models[kind]; ok {
		r.From = ModelLabel(rec)
	}
	var pending string
	var started time.Time
	err = s.pool.QueryRow(ctx, reindexPendingSQL, kind).Scan(&pending, &started)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
	case err != nil:
		return r, wrap(err, "reindex %s", Plural(kind))
	case pending != r.To:
		return r, &ReindexConflictError{Kind: kind, Pending: pending, Started: started}
	default:
		r.Resumed = true
	}
	if !r.Resumed && r.From == r.To && !opts.Force {
		r.Skipped = "already embedded with " + r.To + " (--force re-embeds anyway)"
		return r, nil
	}

	phase("adding shadow columns")
	if err := s.addShadow(ctx, kind, to); err != nil {
		return r, err
	}
	for {
		phase("embedding")
		if err := s.fill(ctx, kind, opts, &r); err != nil {
			return r, err
		}
		phase("building the vector index (concurrently)")
		if err := buildIndex(ctx, s.pool, t, "embedding_next", t+"_embedding_next_hnsw"); err != nil {
			return r, err
		}
		phase("switching")
		done, err := s.switchOver(ctx, kind, opts.Embedder, &r)
		if err != nil {
			return r, err
		}
		if done {
			s.forgetModels()
			return r, nil
		}
		// More rows were edited meanwhile than may be embedded while writes wait: fill again.
	}
}

func (s *Store) addShadow(ctx context.Context, kind string, to embed.Info) error {
	t := Plural(kind)
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// Adding columns takes a brief exclusive lock; give up rather than queue behind a long
		// query and stall every search behind us.
		if _, err := tx.Exec(ctx, ddlLockTimeoutSQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, reindexRecordSQL, kind, to.Provider, to.Model, to.Dimensions); err != nil {
			return wrap(err, "record the reindex of %s", Plural(kind))
		}
		_, err := tx.Exec(ctx, fmt.Sprintf(addShadowColumnsSQL, t, to.Dimensions))
		return wrap(err, "add shadow columns to %s", t)
	})
}

// fill embeds, into the shadow columns, every row whose text has no vector of the new model,
// in passes over the table until a pass finds none (rows edited during a pass are caught by the
// next).
func (s *Store) fill(ctx context.Context, kind string, opts ReindexOptions, r *ReindexResult) error {
	t := Plural(kind)
	var total int64
	if err := s.pool.QueryRow(ctx, fmt.Sprintf(countUnembeddedSQL, t)).Scan(&total); err != nil {
		return wrap(err, "count %s to re-embed", t)
	}
	var done int64
	report := func() {
		if opts.Progress != nil {
			opts.Progress(kind, done, max(total, done))
		}
	}
	report()
	for {
		var after int64
		found := false
		for {
			batch, err := s.unembedded(ctx, s.pool, kind, after, opts.Batch)
			if err != nil {
				return err
			}
			if len(batch) == 0 {
				break
			}
			found = true
			after = batch[len(batch)-1].id
			n, failed, err := s.embedNext(ctx, s.pool, opts.Embedder, batch)
			if err != nil {
				return err
			}
			done += int64(len(batch))
			r.Embedded += n
			r.Failed += failed
			report()
		}
		if !found {
			return nil
		}
	}
}

// unembedded returns up to n rows after id whose text has no vector of the new model yet.
func (s *Store) unembedded(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}, kind string, after int64, n int) ([]claimed, error) {
	t := Plural(kind)
	body := episodeTextSQL
	if kind == KindEntity {
		body = entityTextSQL
	}
	rows, err := q.Query(ctx, fmt.Sprintf(unembeddedSQL, body, t), after, n)
	if err != nil {
		return nil, wrap(err, "read %s to re-embed", t)
	}
	cs, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (claimed, error) {
		c := claimed{kind: kind}
		return c, row.Scan(&c.id, &c.hash, &c.text)
	})
	return cs, wrap(err, "read %s to re-embed", t)
}

// embedNext embeds a batch with the new model into the shadow columns. Inputs the model cannot
// take get their reason in embed_next_error; a transient failure is retried a few times here,
// since a reindex has no job queue behind it, then returned (run the reindex again).
func (s *Store) embedNext(ctx context.Context, q interface {
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}, emb embed.Embedder, batch []claimed) (embedded, failed int64, err error) {
	info := emb.Info()
	t := Plural(batch[0].kind)
	failures := map[int]string{}
	texts := make([]string, len(batch))
	for i, c := range batch {
		texts[i] = c.text
	}
	var vecs [][]float32
	for attempt := 1; ; attempt++ {
		vecs, err = embedSome(ctx, emb, texts, failures)
		if err == nil || !embed.IsTransient(err) || attempt == 5 {
			break
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(time.Duration(attempt*attempt) * time.Second):
		}
	}
	if err != nil {
		return 0, 0, fmt.Errorf("re-embed %s with %s: %w", t, info, err)
	}
	if bad := wrongSize(vecs, info.Dimensions); bad > 0 {
		return 0, 0, fmt.Errorf("model %s returned %d-dimension vectors, not the %d asked for: pass --dims %d", info.Model, bad, info.Dimensions, bad)
	}
	ids := make([]int64, len(batch))
	hashes := make([]uuid.UUID, len(batch))
	vtexts := make([]*string, len(batch))
	reasons := make([]*string, len(batch))
	for i, c := range batch {
		ids[i], hashes[i] = c.id, c.hash
		if why, bad := failures[i]; bad {
			reasons[i] = &why
			failed++
			continue
		}
		v := VectorText(vecs[i])
		vtexts[i] = &v
		embedded++
	}
	_, err = q.Exec(ctx, fmt.Sprintf(writeShadowVectorsSQL, t), ids, hashes, vtexts, reasons, ModelLabel(info))
	if err != nil {
		return 0, 0, wrap(err, "write re-embedded %s", t)
	}
	return embedded, failed, nil
}

// embedSome embeds texts, leaving out (and recording in failures, by index) those the model
// names as impossible. A model-level permanent failure is returned: no row can be embedded.
func embedSome(ctx context.Context, emb embed.Embedder, texts []string, failures map[int]string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	idx := make([]int, 0, len(texts))
	for i := range texts {
		if _, bad := failures[i]; !bad {
			idx = append(idx, i)
		}
	}
	for len(idx) > 0 {
		sub := make([]string, len(idx))
		for j, i := range idx {
			sub[j] = texts[i]
		}
		vecs, err := emb.Embed(ctx, embed.Document, sub)
		var perm *embed.PermanentError
		switch {
		case err == nil:
			for j, i := range idx {
				out[i] = vecs[j]
			}
			return out, nil
		case errors.As(err, &perm) && len(perm.Inputs) > 0:
			bad := map[int]bool{}
			for _, j := range perm.Inputs {
				bad[j] = true
				failures[idx[j]] = perm.Reason
			}
			rest := idx[:0:0]
			for j, i := range idx {
				if !bad[j] {
					rest = append(rest, i)
				}
			}
			idx = rest
		default:
			return nil, err
		}
	}
	return out, nil
}

// buildIndex builds an HNSW index on column concurrently (writes and searches go on), replacing
// an invalid one a killed build left behind.
func buildIndex(ctx context.Context, pool *pgxpool.Pool, t, column, name string) error {
	var valid *bool
	err := pool.QueryRow(ctx, indexValidSQL, name).Scan(&valid)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return wrap(err, "look for index %s", name)
	}
	if valid != nil && *valid {
		return nil
	}
	if valid != nil {
		if _, err := pool.Exec(ctx, fmt.Sprintf(dropIndexSQL, name)); err != nil {
			return wrap(err, "drop the unfinished index %s", name)
		}
	}
	_, err = pool.Exec(ctx, fmt.Sprintf(createHNSWIndexSQL, name, t, column))
	return wrap(err, "build index %s", name)
}

// switchOver makes the shadow columns current in one transaction: it locks the table (searches
// and writes wait, for milliseconds), embeds the few rows edited since the fill, renames the
// columns and indexes (catalog changes) and records the kind's model. The lock is the first taken
// and the strongest needed: upgrading a weaker one would deadlock with any transaction that read
// the table and then writes it. It reports false, changing nothing, when too many rows were
// edited meanwhile or the lock was not granted quickly.
func (s *Store) switchOver(ctx context.Context, kind string, emb embed.Embedder, r *ReindexResult) (bool, error) {
	t, to := Plural(kind), emb.Info()
	hnsw := "idx_" + t + "_embedding_hnsw"
	switched := false
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		// A long query holding the table would make every search queue behind our lock request:
		// give up quickly instead and try again after the next fill pass.
		if _, err := tx.Exec(ctx, switchLockTimeoutSQL); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(lockTableSQL, t)); err != nil {
			var pe *pgconn.PgError
			if errors.As(err, &pe) && pe.Code == "55P03" {
				return nil
			}
			return wrap(err, "lock %s", t)
		}
		for after := int64(0); ; {
			batch, err := s.unembedded(ctx, tx, kind, after, catchUpLimit+1)
			if err != nil {
				return err
			}
			if len(batch) > catchUpLimit {
				return nil // too many: fill again without blocking writes
			}
			if len(batch) == 0 {
				break
			}
			after = batch[len(batch)-1].id
			n, failed, err := s.embedNext(ctx, tx, emb, batch)
			if err != nil {
				return err
			}
			r.Embedded += n
			r.Failed += failed
		}
		var stmts []string
		// The shadow columns addShadow adds, and the columns they replace.
		for _, c := range [][2]string{
			{"embedding", "embedding_next"},
			{"embedding_model", "embedding_next_model"},
			{"embedded_hash", "embedded_next_hash"},
			{"embed_error", "embed_next_error"},
		} {
			stmts = append(stmts, fmt.Sprintf(renameColumnSQL, t, c[0], c[0]+"_prev"),
				fmt.Sprintf(renameColumnSQL, t, c[1], c[0]))
		}
		stmts = append(stmts,
			fmt.Sprintf(renameIndexIfExistsSQL, hnsw, t+"_embedding_prev_hnsw"),
			fmt.Sprintf(renameIndexSQL, t+"_embedding_next_hnsw", hnsw),
			embedWriterOnSQL,
			fmt.Sprintf(switchedStatesSQL, t),
			embedWriterOffSQL,
			fmt.Sprintf(dropPreviousColumnsSQL, t))
		for _, q := range stmts {
			if _, err := tx.Exec(ctx, q); err != nil {
				return wrap(err, "switch %s to %s", t, ModelLabel(to))
			}
		}
		if _, err := tx.Exec(ctx, reindexForgetSQL, kind); err != nil {
			return wrap(err, "switch %s to %s", t, ModelLabel(to))
		}
		if _, err := tx.Exec(ctx, recordModelSQL, kind, to.Provider, to.Model, to.Dimensions); err != nil {
			return wrap(err, "record the model of %s", Plural(kind))
		}
		switched = true
		return nil
	})
	return switched, err
}

// AbortReindex drops an unfinished reindex of kinds (default both): its shadow columns, their
// index and its record. The kinds' current vectors are untouched.
func (s *Store) AbortReindex(ctx context.Context, kinds []string) error {
	if len(kinds) == 0 {
		kinds = []string{KindEntity, KindEpisode}
	}
	for _, kind := range kinds {
		t := Plural(kind)
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(dropIndexSQL, t+"_embedding_next_hnsw")); err != nil {
			return wrap(err, "abort the reindex of %s", t)
		}
		err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, ddlLockTimeoutSQL); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, fmt.Sprintf(dropShadowColumnsSQL, t)); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, reindexForgetSQL, kind)
			return err
		})
		if err != nil {
			return wrap(err, "abort the reindex of %s", t)
		}
	}
	return nil
}

// RebuildIndexes rebuilds the kinds' (default both) HNSW indexes without blocking searches or
// writes (REINDEX CONCURRENTLY), creating one that is missing.
func (s *Store) RebuildIndexes(ctx context.Context, kinds []string) error {
	if len(kinds) == 0 {
		kinds = []string{KindEntity, KindEpisode}
	}
	for _, kind := range kinds {
		t := Plural(kind)
		name := "idx_" + t + "_embedding_hnsw"
		var exists bool
		if err := s.pool.QueryRow(ctx, indexExistsSQL, name).Scan(&exists); err != nil {
			return wrap(err, "rebuild %s", name)
		}
		if !exists {
			if err := buildIndex(ctx, s.pool, t, "embedding", name); err != nil {
				return err
			}
			continue
		}
		if _, err := s.pool.Exec(ctx, fmt.Sprintf(rebuildIndexSQL, name)); err != nil {
			return wrap(err, "rebuild %s", name)
		}
	}
	return nil
}
