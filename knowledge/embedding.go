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
	// Lease is how long claimed rows are kept from other workers without word from their
	// worker, which renews it while its embed call runs; default DefaultLease. A worker that
	// dies leaves its rows to be claimed again when the lease ends.
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

// DefaultLease is how long a claim lasts without renewal: short, so that a dead worker's rows
// are taken over in seconds; its worker renews it every third of that while embedding.
const DefaultLease = 5 * time.Second

type claimed struct {
	kind  string
	id    int64
	hash  uuid.UUID
	text  string
	claim uuid.UUID // the batch's claim token
}

// readier is an embedder that can say when it is worth calling (embed.Guard).
type readier interface {
	Ready(ctx context.Context) error
}

// EmbedPending embeds pending rows, batch by batch and kind by kind, until none is left or the
// budget is spent, each kind with its recorded model (the configured one until a model is
// recorded). The embed call runs outside any transaction; each vector is written only if its
// row's text is unchanged. A *embed.TransientError (Ollama down, slow, 5xx) releases the batch
// and is returned for the caller to retry later; rows that can never be embedded are marked
// failed with the reason.
func (s *Store) EmbedPending(ctx context.Context, opts EmbedOptions) (EmbedStats, error) {
	if opts.Batch <= 0 {
		opts.Batch = embed.DefaultBatchSize
	}
	if opts.Lease <= 0 {
		opts.Lease = DefaultLease
	}
	if opts.Budget <= 0 {
		opts.Budget = 20 * time.Second
	}
	var st EmbedStats
	deadline := time.Now().Add(opts.Budget)
	for _, kind := range []string{KindEntity, KindEpisode} {
		for {
			if time.Now().After(deadline) {
				st.More = true
				return st, nil
			}
			// Asked per batch: a reindex may switch the kind's model at any time.
			emb, dims, err := s.embedderFor(ctx, kind)
			if err != nil {
				return st, fmt.Errorf("embed %s: %w", Plural(kind), err)
			}
			// While the embedder fails, wait for it here, holding no rows, rather than claim
			// rows only to give them back.
			if r, ok := emb.(readier); ok {
				rctx, cancel := context.WithDeadline(ctx, deadline)
				err := r.Ready(rctx)
				cancel()
				if err != nil {
					return st, err
				}
			}
			batch, err := s.claim(ctx, kind, opts.Batch, opts.Lease)
			if err != nil {
				return st, err
			}
			if len(batch) == 0 {
				// Rows leased by a worker that may have died come free when the lease ends:
				// wait for that within the budget rather than leave them to the next sweep.
				end, err := s.nextLeaseEnd(ctx, kind)
				if err != nil {
					return st, err
				}
				if end.IsZero() || end.After(deadline) {
					if !end.IsZero() {
						st.More = true
					}
					break
				}
				if err := sleep(ctx, time.Until(end)+50*time.Millisecond); err != nil {
					return st, err
				}
				continue
			}
			if err := s.embedHeld(ctx, emb, dims, batch, opts.Lease, &st); err != nil {
				return st, err
			}
		}
	}
	return st, nil
}

// embedHeld embeds a claimed batch while renewing its lease every third of it, and stops the
// call if the claim is lost (a lease that ran out meanwhile, taken by another worker).
func (s *Store) embedHeld(ctx context.Context, emb embed.Embedder, dims int, batch []claimed, lease time.Duration, st *EmbedStats) error {
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	defer close(done)
	ids := make([]int64, len(batch))
	for i, c := range batch {
		ids[i] = c.id
	}
	go func() {
		t := time.NewTicker(lease / 3)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			var held int
			err := s.pool.QueryRow(cctx, renewLeaseSQL, batch[0].kind, ids, batch[0].claim, lease).Scan(&held)
			switch {
			case err != nil && cctx.Err() == nil:
				s.opts.Logger.Debug("renewing an embed lease failed; it runs out on its own", "err", err)
			case err == nil && held == 0:
				cancel() // every row was taken over or edited: the vectors would be refused
				return
			}
		}
	}()
	return s.embedBatch(cctx, emb, dims, batch, st)
}

// nextLeaseEnd is when the soonest lease on a pending row of kind ends; zero if none is held.
func (s *Store) nextLeaseEnd(ctx context.Context, kind string) (time.Time, error) {
	var end *time.Time
	if err := s.pool.QueryRow(ctx, nextLeaseEndSQL, kind).Scan(&end); err != nil {
		return time.Time{}, wrap(err, "look for leased %s", Plural(kind))
	}
	if end == nil {
		return time.Time{}, nil
	}
	return *end, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) claim(ctx context.Context, kind string, n int, lease time.Duration) ([]claimed, error) {
	rows, err := s.pool.Query(ctx, claimSQL, kind, n, lease)
	if err != nil {
		return nil, wrap(err, "claim %s to embed", Plural(kind))
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (claimed, error) {
		c := claimed{kind: kind}
		return c, r.Scan(&c.id, &c.hash, &c.text, &c.claim)
	})
	if err != nil {
		return nil, wrap(err, "claim %s to embed", Plural(kind))
	}
	return cs, nil
}

// release gives claimed rows back at once, so that a retry (or another worker) can claim them
// without waiting for the lease, even when ctx is already cancelled.
func (s *Store) release(ctx context.Context, batch []claimed) {
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.settle(uctx, batch, "", "", &EmbedStats{}); err != nil {
		s.opts.Logger.Warn("releasing claimed rows failed; their lease expires on its own", "err", err)
	}
}

// embedBatch embeds one claimed batch (all of one kind). Inputs the embedder names as impossible
// are failed and the rest embedded again, so one poison row never holds back its batch.
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
					"model %s returned %d-dimension vectors but %s.embedding is vector(%d): configure a %d-dimension model (--embed-model), or re-embed everything with `cairn reindex --model %s --dims %d`",
					info.Model, bad, Plural(batch[0].kind), dims, dims, info.Model, bad)}
			}
		}
		var perm *embed.PermanentError
		switch {
		case err == nil:
			return s.put(ctx, info, batch, vecs, st)
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
			// Transient or unknown: give the rows back and let the caller's backoff decide when.
			s.release(ctx, batch)
			return fmt.Errorf("embed %d %s with %s: %w", len(batch), Plural(batch[0].kind), info, err)
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

// put writes one kind's vectors; rows whose text changed since the claim are skipped, and so is
// the whole batch if a reindex switched the kind to another model meanwhile.
func (s *Store) put(ctx context.Context, info embed.Info, batch []claimed, vecs [][]float32, st *EmbedStats) error {
	ids := make([]int64, len(batch))
	hashes := make([]uuid.UUID, len(batch))
	texts := make([]string, len(batch))
	for i, c := range batch {
		ids[i], hashes[i], texts[i] = c.id, c.hash, VectorText(vecs[i])
	}
	kind := batch[0].kind
	var n int
	if err := s.pool.QueryRow(ctx, putVectorsSQL,
		kind, ids, hashes, texts, info.Provider, info.Model, info.Dimensions, batch[0].claim).Scan(&n); err != nil {
		return wrap(err, "write %d %s vectors", len(ids), kind)
	}
	st.Embedded += n
	st.Stale += len(ids) - n
	switch {
	case n == 0:
		s.forgetModels() // perhaps switched: the next batch asks again
	case !s.knows(kind):
		s.forgetModels() // these vectors recorded the kind's model
	}
	return nil
}

// settle marks rows failed with reason (by model, when no input is to blame), or with reason ""
// releases their lease.
func (s *Store) settle(ctx context.Context, rows []claimed, reason, model string, st *EmbedStats) error {
	if len(rows) == 0 {
		return nil
	}
	r, m := nullable(reason), nullable(model)
	ids := make([]int64, len(rows))
	hashes := make([]uuid.UUID, len(rows))
	for i, c := range rows {
		ids[i], hashes[i] = c.id, c.hash
	}
	kind := rows[0].kind // a batch is of one kind, under one claim
	var n int
	if err := s.pool.QueryRow(ctx, settleSQL, kind, ids, hashes, r, m, rows[0].claim).Scan(&n); err != nil {
		return wrap(err, "settle %d %s rows", len(ids), kind)
	}
	if r != nil {
		st.Failed += n
	}
	return nil
}

// RetryModelFailures queues again the rows that failed for a reason no input was to blame for
// (model missing, wrong size), for after the cause was fixed; cairn calls it at start. Rows whose
// own text cannot be embedded stay failed until their text changes.
func (s *Store) RetryModelFailures(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, retryModelFailuresSQL).Scan(&n)
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
