package status

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/knowledge"
)

// knowledge counts the graph and reports on its embedders. Without the knowledge tables
// (pgvector missing when cairn migrated) it leaves both null: pgvector_missing or schema_behind
// says why.
func (c *collector) knowledge(ctx context.Context) error {
	rep, log := c.rep, c.opts.Logger
	dims, err := knowledge.New(c.pool, knowledge.Options{Logger: log}).ColumnDimensions(ctx, knowledge.KindEntity)
	if errors.Is(err, knowledge.ErrUnavailable) {
		return nil
	}
	if err != nil {
		return err
	}
	es, configured, err := c.chooseEmbedder(ctx, dims)
	if err != nil {
		return err
	}
	store := knowledge.New(c.pool, knowledge.Options{Embedder: configured, Logger: log})
	ks, err := store.Status(ctx)
	if err != nil {
		return fmt.Errorf("knowledge graph status: %w", err)
	}
	recorded, err := store.Models(ctx)
	if err != nil {
		return err
	}

	counts := rep.Counts
	counts.Entities, counts.Episodes, counts.Relations = countPtr(ks.Entities.Total), countPtr(ks.Episodes.Total), countPtr(ks.Relations)
	counts.EmbeddingsPending = countPtr(ks.Entities.Pending + ks.Episodes.Pending)
	failed := ks.Entities.Failed + ks.Episodes.Failed
	counts.EmbeddingsFailed = countPtr(failed)
	if failed > 0 {
		why := ""
		if len(ks.Failures) > 0 {
			f := ks.Failures[0]
			why = fmt.Sprintf(" (most: %d %s rows: %s)", f.Rows, f.Kind, oneLine(f.Reason, 200))
		}
		rep.problem("embeddings_failed", false, "%d knowledge rows failed to embed%s; rows whose text is to blame are queued again when it changes, the rest when cairn restarts after the cause is fixed", failed, why)
	}

	es.ColumnDimensions = dims
	es.GraphModels = ks.Models
	if es.GraphModels == nil {
		es.GraphModels = []knowledge.ModelCount{}
	}
	es.Recorded = map[string]string{knowledge.KindEntity: ks.Entities.Model, knowledge.KindEpisode: ks.Episodes.Model}
	es.GraphModel = cmp.Or(ks.Entities.Model, ks.Episodes.Model)
	es.OtherModelRows = ks.Entities.OtherModel + ks.Episodes.OtherModel
	rep.Embedder = es

	// What embeds a kind is its recorded model once it has one (serve builds that embedder from
	// the same Ollama host), else the configured embedder. Each Ollama model in use must answer.
	inUse := map[string][]string{} // label → kinds
	infos := map[string]embed.Info{}
	columns := map[string]int{knowledge.KindEntity: ks.Entities.ColumnDimensions, knowledge.KindEpisode: ks.Episodes.ColumnDimensions}
	var misfits []string
	for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
		i, ok := recorded[kind]
		if !ok {
			i = configured.Info()
			if n := columns[kind]; i.Dimensions != 0 && i.Dimensions != n {
				misfits = append(misfits, fmt.Sprintf("%s are stored as vector(%d)", knowledge.Plural(kind), n))
			}
		}
		label := knowledge.ModelLabel(i)
		inUse[label] = append(inUse[label], knowledge.Plural(kind))
		infos[label] = i
	}
	if len(misfits) > 0 {
		rep.problem("embedder_misconfigured", false, "the embedder the flags choose (%s) makes %d-dimension vectors but %s: nothing new can be embedded until the model matches",
			es.Label, es.Dimensions, strings.Join(misfits, " and "))
	}
	for _, label := range slices.Sorted(maps.Keys(inUse)) {
		i := infos[label]
		if i.Provider != embed.ProviderOllama {
			continue
		}
		o, err := c.probeModel(ctx, es, i)
		if err != nil {
			return err
		}
		if !o.OK {
			rep.problem("embedder_unreachable", false, "Ollama is not usable for %s, which embeds the graph's %s: %s; embed jobs wait and search uses keywords until it is", label, strings.Join(inUse[label], " and "), o.Error)
		}
	}
	for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
		if m := es.Recorded[kind]; m != "" && m != es.Label {
			rep.warn("%s are embedded with %s (recorded with their first vectors), not with the flags' %s: cairn keeps using %s for them", knowledge.Plural(kind), m, es.Label, m)
		}
	}
	if es.OtherModelRows > 0 {
		rep.warn("%d knowledge rows carry vectors of another model than their kind's: search by meaning skips them until they are embedded again", es.OtherModelRows)
	}
	return nil
}

// chooseEmbedder builds the embedder the settings choose, as serve does (same options, same
// choice), and reports why and what Ollama said.
func (c *collector) chooseEmbedder(ctx context.Context, dims int) (*Embedder, embed.Embedder, error) {
	eo := c.opts.Embed.ForColumns(dims)
	eo.ProbeTimeout = c.opts.ProbeTimeout
	es := &Embedder{Requested: cmp.Or(strings.ToLower(strings.TrimSpace(eo.Provider)), embed.ProviderAuto), Ollama: []Ollama{}}
	e, ch, err := embed.Choose(ctx, eo)
	if err != nil {
		return nil, nil, settingsError{err}
	}
	es.Why = ch.Why
	if ch.Probed {
		h := redactHost(eo.Host)
		st := Ollama{Host: h.shown, Model: cmp.Or(eo.Model, embed.DefaultModel), OK: ch.ProbeErr == nil}
		if ch.ProbeErr != nil {
			st.Error = h.probeMessage(ch.ProbeErr, c.opts.ProbeTimeout)
		}
		es.Ollama = append(es.Ollama, st)
	}
	i := e.Info()
	es.Provider, es.Model, es.Dimensions, es.Label = i.Provider, i.Model, i.Dimensions, knowledge.ModelLabel(i)
	return es, e, nil
}
