package knowledge

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// EmbedInfo is a row's embedding state: pending, embedded, failed (with the reason) or external
// (a vector written by SQL), and the model of its vector.
type EmbedInfo struct {
	State string `json:"embed_state"`
	Model string `json:"embedding_model,omitempty"`
	Error string `json:"embed_error,omitempty"`
}

// EntitySummary is an entity without its relations.
type EntitySummary struct {
	ID      int64  `json:"id"`
	Name    string `json:"name"`
	Type    string `json:"entity_type"`
	Summary string `json:"summary,omitempty"`
}

// Relation is a fact between two entities; InvalidAt is set once it was replaced or ended.
type Relation struct {
	ID        int64      `json:"id"`
	SourceID  int64      `json:"source_id"`
	Source    string     `json:"source"`
	Type      string     `json:"relation_type"`
	TargetID  int64      `json:"target_id"`
	Target    string     `json:"target"`
	Fact      string     `json:"fact,omitempty"`
	EpisodeID *int64     `json:"episode_id,omitempty"`
	ValidAt   time.Time  `json:"valid_at"`
	InvalidAt *time.Time `json:"invalid_at,omitempty"`
}

// EpisodeSummary is an episode without its mentions.
type EpisodeSummary struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name,omitempty"`
	Type       string    `json:"episode_type"`
	Content    string    `json:"content"`
	OccurredAt time.Time `json:"occurred_at"`
}

// Entity is an entity with its relations (current ones, and replaced ones when asked) and the
// latest episodes that mention it.
type Entity struct {
	EntitySummary
	Attributes json.RawMessage `json:"attributes"`
	EmbedInfo
	CreatedAt time.Time        `json:"created_at"`
	UpdatedAt time.Time        `json:"updated_at"`
	Relations []Relation       `json:"relations"`
	Episodes  []EpisodeSummary `json:"episodes"`
}

// Episode is an episode with the entities it mentions.
type Episode struct {
	EpisodeSummary
	SourceDescription string          `json:"source_description,omitempty"`
	Metadata          json.RawMessage `json:"metadata"`
	EmbedInfo
	CreatedAt time.Time       `json:"created_at"`
	Mentions  []EntitySummary `json:"mentions"`
}

// episodesPerEntity bounds the episodes listed with an entity.
const episodesPerEntity = 20

func scanRelation(row pgx.CollectableRow) (Relation, error) {
	var r Relation
	return r, row.Scan(&r.ID, &r.SourceID, &r.Source, &r.Type, &r.TargetID, &r.Target, &r.Fact, &r.EpisodeID, &r.ValidAt, &r.InvalidAt)
}

// GetEntity returns an entity, its relations in both directions (history too with
// includeInvalid) and the latest episodes mentioning it.
func (s *Store) GetEntity(ctx context.Context, ref EntityRef, includeInvalid bool) (Entity, error) {
	if err := ref.check("entity"); err != nil {
		return Entity{}, err
	}
	var e Entity
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		id, _, err := resolve(ctx, tx, ref, false)
		if err != nil {
			return err
		}
		err = tx.QueryRow(ctx, getEntitySQL, id).Scan(&e.ID, &e.Name, &e.Type, &e.Summary, &e.Attributes, &e.State,
			&e.Model, &e.Error, &e.CreatedAt, &e.UpdatedAt)
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, entityRelationsSQL, id, includeInvalid)
		if err != nil {
			return err
		}
		if e.Relations, err = pgx.CollectRows(rows, scanRelation); err != nil {
			return err
		}
		rows, err = tx.Query(ctx, entityEpisodesSQL, id, episodesPerEntity)
		if err != nil {
			return err
		}
		e.Episodes, err = pgx.CollectRows(rows, scanEpisodeSummary)
		return err
	})
	if err != nil {
		return Entity{}, wrap(err, "get entity %s", ref)
	}
	return e, nil
}

func scanEpisodeSummary(row pgx.CollectableRow) (EpisodeSummary, error) {
	var p EpisodeSummary
	return p, row.Scan(&p.ID, &p.Name, &p.Type, &p.Content, &p.OccurredAt)
}

// GetEpisode returns an episode and the entities it mentions.
func (s *Store) GetEpisode(ctx context.Context, id int64) (Episode, error) {
	if id <= 0 {
		return Episode{}, inputErrorf("id is required: the episode's id as knowledge_add_episode or knowledge_search returned it")
	}
	var p Episode
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, getEpisodeSQL, id).Scan(&p.ID, &p.Name, &p.Type, &p.Content, &p.OccurredAt, &p.SourceDescription,
			&p.Metadata, &p.State, &p.Model, &p.Error, &p.CreatedAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return &NotFoundError{Kind: "episode", What: "#" + strconv.FormatInt(id, 10)}
		}
		if err != nil {
			return err
		}
		rows, err := tx.Query(ctx, episodeMentionsSQL, id)
		if err != nil {
			return err
		}
		p.Mentions, err = pgx.CollectRows(rows, scanEntitySummary)
		return err
	})
	if err != nil {
		return Episode{}, wrap(err, "get episode %d", id)
	}
	return p, nil
}

func scanEntitySummary(row pgx.CollectableRow) (EntitySummary, error) {
	var e EntitySummary
	return e, row.Scan(&e.ID, &e.Name, &e.Type, &e.Summary)
}

// NeighborsQuery asks for the entities within Depth relations of an entity.
type NeighborsQuery struct {
	Entity EntityRef
	// Depth is how many relations away to go, 1 to MaxDepth; default 1.
	Depth int
	// RelationTypes, if any, are the only relations followed.
	RelationTypes []string
	// IncludeInvalid follows replaced and ended facts too.
	IncludeInvalid bool
	// Limit bounds the entities returned; default 100, at most MaxNeighbors.
	Limit int
}

// Neighbor is an entity reached by the walk and how many relations away it is.
type Neighbor struct {
	EntitySummary
	Depth int `json:"depth"`
}

// Neighborhood is the result of a walk: the entities by distance and the relations among them
// that the walk followed.
type Neighborhood struct {
	Root      EntitySummary `json:"root"`
	Neighbors []Neighbor    `json:"neighbors"`
	Relations []Relation    `json:"relations"`
	// Truncated is true when Limit stopped the walk.
	Truncated bool `json:"truncated"`
}

// Neighbors walks the graph breadth first, in both directions, visiting each entity once, so
// cycles end the walk rather than loop it.
func (s *Store) Neighbors(ctx context.Context, q NeighborsQuery) (Neighborhood, error) {
	if err := q.Entity.check("entity"); err != nil {
		return Neighborhood{}, err
	}
	if q.Depth == 0 {
		q.Depth = 1
	}
	if q.Depth < 1 || q.Depth > MaxDepth {
		return Neighborhood{}, inputErrorf("depth %d: use 1 to %d", q.Depth, MaxDepth)
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	if q.Limit < 1 || q.Limit > MaxNeighbors {
		return Neighborhood{}, inputErrorf("limit %d: use 1 to %d", q.Limit, MaxNeighbors)
	}
	var types []string
	if len(q.RelationTypes) > 0 {
		types = q.RelationTypes
	}
	n := Neighborhood{Neighbors: []Neighbor{}, Relations: []Relation{}}
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{AccessMode: pgx.ReadOnly, IsoLevel: pgx.RepeatableRead}, func(tx pgx.Tx) error {
		root, _, err := resolve(ctx, tx, q.Entity, false)
		if err != nil {
			return err
		}
		if err := tx.QueryRow(ctx, entitySummarySQL, root).
			Scan(&n.Root.ID, &n.Root.Name, &n.Root.Type, &n.Root.Summary); err != nil {
			return err
		}
		seen := map[int64]bool{root: true}
		edges := map[int64]bool{}
		frontier := []int64{root}
		for depth := 1; depth <= q.Depth && len(frontier) > 0 && !n.Truncated; depth++ {
			rows, err := tx.Query(ctx, frontierRelationsSQL, frontier, q.IncludeInvalid, types)
			if err != nil {
				return err
			}
			rels, err := pgx.CollectRows(rows, scanRelation)
			if err != nil {
				return err
			}
			var next []int64
			for _, r := range rels {
				if !edges[r.ID] {
					edges[r.ID] = true
					n.Relations = append(n.Relations, r)
				}
				for _, id := range []int64{r.SourceID, r.TargetID} {
					if seen[id] {
						continue
					}
					if len(seen)-1 >= q.Limit {
						n.Truncated = true
						break
					}
					seen[id] = true
					next = append(next, id)
				}
			}
			if len(next) == 0 {
				break
			}
			rows, err = tx.Query(ctx, entitySummariesSQL, next)
			if err != nil {
				return err
			}
			found, err := pgx.CollectRows(rows, scanEntitySummary)
			if err != nil {
				return err
			}
			for _, e := range found {
				n.Neighbors = append(n.Neighbors, Neighbor{EntitySummary: e, Depth: depth})
			}
			frontier = next
		}
		// Keep only relations between entities in the result, so a truncated walk does not
		// point at entities it does not list.
		n.Relations = slices.DeleteFunc(n.Relations, func(r Relation) bool { return !seen[r.SourceID] || !seen[r.TargetID] })
		return nil
	})
	if err != nil {
		return Neighborhood{}, wrap(err, "neighbors of %s", q.Entity)
	}
	return n, nil
}
