package knowledge

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Counts are one kind's rows by embed state, and the model its vectors come from.
type Counts struct {
	// Model is the recorded model of the kind's vectors (provider/model/dimensions), "" until the
	// first vectors are written.
	Model string `json:"model"`
	// ColumnDimensions is the size of the kind's vector column.
	ColumnDimensions int   `json:"column_dimensions"`
	Total            int64 `json:"total"`
	Embedded         int64 `json:"embedded"`
	Pending          int64 `json:"pending"`
	Failed           int64 `json:"failed"`
	// External counts vectors written by SQL (insert_vector) rather than by cairn's embedder.
	External int64 `json:"external"`
	// OtherModel counts rows embedded by a model other than the recorded one: search by meaning
	// skips them until they are embedded again.
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

// Status is the state of the graph and its embeddings. Provider, Model and Dimensions are the
// embedder this process was configured with; each kind's Counts.Model is what its vectors use.
type Status struct {
	Provider   string `json:"provider"`
	Model      string `json:"model"`
	Dimensions int    `json:"dimensions"`
	// ModelLabel is the configured embedder's provider/model/dimensions.
	ModelLabel string `json:"model_label"`
	Entities   Counts `json:"entities"`
	Episodes   Counts `json:"episodes"`
	Relations  int64  `json:"relations"`
	// InvalidRelations are facts that were replaced or ended, kept for history.
	InvalidRelations int64 `json:"invalid_relations"`
	// OldestPending is when the longest-waiting pending row was written; nil if none waits.
	OldestPending        *time.Time   `json:"oldest_pending,omitempty"`
	OldestPendingSeconds float64      `json:"oldest_pending_seconds"`
	Models               []ModelCount `json:"models"`
	Failures             []Failure    `json:"failures"`
	Warnings             []string     `json:"warnings"`
}

// Status counts rows by embed state and model, lists why rows failed, and warns about what
// keeps rows from being found by meaning.
func (s *Store) Status(ctx context.Context) (Status, error) {
	st := Status{Models: []ModelCount{}, Failures: []Failure{}, Warnings: []string{}}
	if e := s.opts.Embedder; e != nil {
		i := e.Info()
		st.Provider, st.Model, st.Dimensions, st.ModelLabel = i.Provider, i.Model, i.Dimensions, ModelLabel(i)
	} else {
		st.Warnings = append(st.Warnings, "no embedder is configured: search is by keyword only")
	}
	s.forgetModels()
	models, err := s.Models(ctx)
	if err != nil {
		return Status{}, err
	}
	for _, kind := range []string{KindEntity, KindEpisode} {
		c := st.counts(kind)
		if c.ColumnDimensions, err = s.ColumnDimensions(ctx, kind); err != nil {
			return Status{}, err
		}
		rec, ok := models[kind]
		if ok {
			c.Model = ModelLabel(rec)
		}
		switch dims := st.Dimensions; {
		case ok && st.ModelLabel != "" && c.Model != st.ModelLabel:
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s are embedded with %s (recorded with their first vectors), not with this process's %s: cairn keeps using %s; `cairn reindex` changes it", Plural(kind), c.Model, st.ModelLabel, c.Model))
		case !ok && dims != 0 && dims != c.ColumnDimensions:
			st.Warnings = append(st.Warnings, fmt.Sprintf("the embedder makes %d-dimension vectors but %s.embedding is vector(%d): no %s can be embedded until the model matches or `cairn reindex --dims %d` runs", dims, Plural(kind), c.ColumnDimensions, kind, dims))
		}
	}

	b := &pgx.Batch{}
	b.Queue(statusSQL)
	b.Queue(relationCountsSQL)
	b.Queue(modelCountsSQL)
	b.Queue(failureReasonsSQL)
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
		k := st.counts(kind)
		c.Model, c.ColumnDimensions = k.Model, k.ColumnDimensions
		*k = c
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
	if rows, err = br.Query(); err == nil {
		st.Models, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (ModelCount, error) {
			var m ModelCount
			return m, r.Scan(&m.Kind, &m.Model, &m.Rows)
		})
	}
	if err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	if rows, err = br.Query(); err == nil {
		st.Failures, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (Failure, error) {
			var f Failure
			return f, r.Scan(&f.Kind, &f.Reason, &f.Rows)
		})
	}
	if err != nil {
		return Status{}, wrap(err, "knowledge status")
	}
	// A kind's first vectors record its model in the same transaction; if they committed between
	// reading the models above and counting the rows, read the models again.
	for _, kind := range []string{KindEntity, KindEpisode} {
		if c := st.counts(kind); c.Model == "" && c.Embedded > 0 {
			s.forgetModels()
			if models, err = s.Models(ctx); err != nil {
				return Status{}, err
			}
			if rec, ok := models[kind]; ok {
				c.Model = ModelLabel(rec)
			}
		}
	}
	if st.OldestPending != nil {
		st.OldestPendingSeconds = time.Since(*st.OldestPending).Seconds()
	}
	if n := st.Entities.OtherModel + st.Episodes.OtherModel; n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d rows carry vectors of another model than their kind's; search by meaning skips them until they are embedded again (see models)", n))
	}
	if n := st.Entities.Failed + st.Episodes.Failed; n > 0 {
		st.Warnings = append(st.Warnings, fmt.Sprintf("%d rows failed to embed (see failures): a row whose text is to blame is queued again when its text changes; the rest when cairn restarts, after the cause is fixed", n))
	}
	return st, nil
}

func (st *Status) counts(kind string) *Counts {
	if kind == KindEpisode {
		return &st.Episodes
	}
	return &st.Entities
}

// EmbedBacklog is how many rows of each kind wait to be embedded and how many failed: what a
// metrics scrape asks every few seconds, so it reads the partial indexes of pending and failed
// rows rather than counting every row as Status does.
type EmbedBacklog struct {
	Kind            string
	Pending, Failed int64
}

// Backlog returns the embed backlog of both kinds.
func (s *Store) Backlog(ctx context.Context) ([]EmbedBacklog, error) {
	rows, err := s.pool.Query(ctx, backlogSQL)
	if err != nil {
		return nil, wrap(err, "count the embed backlog")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (EmbedBacklog, error) {
		var b EmbedBacklog
		return b, r.Scan(&b.Kind, &b.Pending, &b.Failed)
	})
	if err != nil {
		return nil, wrap(err, "count the embed backlog")
	}
	return out, nil
}
