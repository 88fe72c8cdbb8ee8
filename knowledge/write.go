package knowledge

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// EntityInput is an entity to create or update.
type EntityInput struct {
	Name string
	// Type groups entities (error, service, person, file); default "entity".
	Type string
	// Summary replaces the entity's summary (the context column) when not nil.
	Summary *string
	// Attributes are merged key by key into the entity's attributes.
	Attributes json.RawMessage
}

// Written says what a write did. Embedding is "pending" when the row's text changed and a job
// will embed it, else the row's unchanged embed state.
type Written struct {
	Kind      string `json:"kind"`
	ID        int64  `json:"id"`
	Created   bool   `json:"created"`
	Embedding string `json:"embedding"`
}

// UpsertEntity creates the entity or updates the one with the same type and normalized name
// (case and spacing ignored), so that recording the same error type twice gives one entity.
func (s *Store) UpsertEntity(ctx context.Context, in EntityInput) (Written, error) {
	if err := checkEntityInput(in); err != nil {
		return Written{}, err
	}
	attrs, err := callerr.JSONObject("attributes", in.Attributes)
	if err != nil {
		return Written{}, err
	}
	var w Written
	err = s.write(ctx, func(tx pgx.Tx) (bool, error) {
		w, err = upsertEntity(ctx, tx, in.Name, entityType(in.Type), in.Summary, attrs)
		return w.Embedding == "pending", err
	})
	if err != nil {
		return Written{}, wrap(err, "upsert entity %q", in.Name)
	}
	return w, nil
}

func checkEntityInput(in EntityInput) error {
	if strings.TrimSpace(in.Name) == "" {
		return inputErrorf("name is required, e.g. \"ModuleNotFoundError\"")
	}
	if len(in.Name) > MaxNameLen {
		return inputErrorf("name is %d bytes; at most %d", len(in.Name), MaxNameLen)
	}
	if len(in.Type) > MaxTypeLen {
		return inputErrorf("entity_type is %d bytes; at most %d", len(in.Type), MaxTypeLen)
	}
	if in.Summary != nil && len(*in.Summary) > MaxTextLen {
		return inputErrorf("summary is %d bytes; at most %d", len(*in.Summary), MaxTextLen)
	}
	return nil
}

func entityType(t string) string {
	if strings.TrimSpace(t) == "" {
		return "entity"
	}
	return strings.TrimSpace(t)
}

func upsertEntity(ctx context.Context, tx pgx.Tx, name, typ string, summary *string, attrs string) (Written, error) {
	w := Written{Kind: KindEntity}
	err := tx.QueryRow(ctx, upsertEntitySQL, name, typ, summary, attrs).Scan(&w.ID, &w.Created, &w.Embedding)
	return w, err
}

// EpisodeInput is something that happened: an error, a deployment, a conversation.
type EpisodeInput struct {
	Name    string
	Content string
	// Type is what kind of episode, e.g. error, deployment, conversation; default "event".
	Type              string
	SourceDescription string
	Metadata          json.RawMessage
	// OccurredAt is when it happened; default now.
	OccurredAt time.Time
	// Mentions are the entities involved; those named with a type are created if missing.
	Mentions []EntityRef
	// IdempotencyKey makes a retry safe: the same key again returns the first episode, changed
	// in nothing, with Duplicate set.
	IdempotencyKey string
}

// EpisodeWritten is what AddEpisode did: the episode and the ids of the entities it mentions.
type EpisodeWritten struct {
	Written
	Mentions []int64 `json:"mentions"`
	// Duplicate is true when the idempotency key had been used: nothing was written.
	Duplicate bool `json:"duplicate"`
}

// AddEpisode records an episode and links the entities it mentions, in one transaction.
func (s *Store) AddEpisode(ctx context.Context, in EpisodeInput) (EpisodeWritten, error) {
	if strings.TrimSpace(in.Content) == "" {
		return EpisodeWritten{}, inputErrorf("content is required: what happened, e.g. \"ModuleNotFoundError: No module named 'numpy' on dashboard startup\"")
	}
	if len(in.Content) > MaxTextLen || len(in.Name) > MaxNameLen || len(in.SourceDescription) > MaxNameLen {
		return EpisodeWritten{}, inputErrorf("content at most %d bytes, name and source_description at most %d", MaxTextLen, MaxNameLen)
	}
	if len(in.Type) > MaxTypeLen {
		return EpisodeWritten{}, inputErrorf("episode_type is %d bytes; at most %d", len(in.Type), MaxTypeLen)
	}
	for i, m := range in.Mentions {
		if err := m.check("mentions[" + strconv.Itoa(i) + "]"); err != nil {
			return EpisodeWritten{}, err
		}
	}
	meta, err := callerr.JSONObject("metadata", in.Metadata)
	if err != nil {
		return EpisodeWritten{}, err
	}
	typ := strings.TrimSpace(in.Type)
	if typ == "" {
		typ = "event"
	}
	var occurred *time.Time
	if !in.OccurredAt.IsZero() {
		occurred = &in.OccurredAt
	}
	if len(in.IdempotencyKey) > 200 {
		return EpisodeWritten{}, inputErrorf("idempotency_key is %d bytes; at most 200", len(in.IdempotencyKey))
	}
	w := EpisodeWritten{Written: Written{Kind: KindEpisode, Created: true}, Mentions: []int64{}}
	err = s.write(ctx, func(tx pgx.Tx) (bool, error) {
		w.Mentions = w.Mentions[:0]
		err := tx.QueryRow(ctx, insertEpisodeSQL, in.Name, in.Content, typ, in.SourceDescription, meta, occurred, in.IdempotencyKey).Scan(&w.ID, &w.Embedding)
		if errors.Is(err, pgx.ErrNoRows) {
			// The key was used: answer with the first episode, as it is now.
			w.Created, w.Duplicate = false, true
			if err := tx.QueryRow(ctx, episodeByKeySQL, in.IdempotencyKey).Scan(&w.ID, &w.Embedding, &w.Mentions); err != nil {
				return false, err
			}
			return false, nil
		}
		if err != nil {
			return false, err
		}
		pending := w.Embedding == "pending"
		for _, m := range in.Mentions {
			id, created, err := resolve(ctx, tx, m, true)
			if err != nil {
				return false, err
			}
			pending = pending || created
			w.Mentions = append(w.Mentions, id)
		}
		if len(w.Mentions) > 0 {
			if _, err := tx.Exec(ctx, insertMentionsSQL, w.ID, w.Mentions); err != nil {
				return false, err
			}
		}
		return pending, nil
	})
	if err != nil {
		return EpisodeWritten{}, wrap(err, "add episode")
	}
	return w, nil
}

// resolve finds the entity ref names; with create, one named with a type is created if missing.
// It reports whether it created one.
func resolve(ctx context.Context, tx pgx.Tx, r EntityRef, create bool) (int64, bool, error) {
	if r.ID != 0 {
		var ok bool
		if err := tx.QueryRow(ctx, entityExistsSQL, r.ID).Scan(&ok); err != nil {
			return 0, false, err
		}
		if !ok {
			return 0, false, &NotFoundError{Kind: "entity", What: r.String()}
		}
		return r.ID, false, nil
	}
	if r.Type != "" {
		if create {
			w, err := upsertEntity(ctx, tx, r.Name, strings.TrimSpace(r.Type), nil, "{}")
			return w.ID, w.Created, err
		}
		var id int64
		err := tx.QueryRow(ctx, entityByTypeAndNameSQL, strings.TrimSpace(r.Type), r.Name).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, false, &NotFoundError{Kind: "entity", What: r.String()}
		}
		return id, false, err
	}
	rows, err := tx.Query(ctx, entitiesByNameSQL, r.Name)
	if err != nil {
		return 0, false, err
	}
	type match struct {
		id  int64
		typ string
	}
	ms, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (match, error) {
		var m match
		return m, row.Scan(&m.id, &m.typ)
	})
	if err != nil {
		return 0, false, err
	}
	switch len(ms) {
	case 0:
		return 0, false, inputErrorf("no entity is named %q: give its entity_type too, and it is created", r.Name)
	case 1:
		return ms[0].id, false, nil
	default:
		types := make([]string, len(ms))
		for i, m := range ms {
			types[i] = m.typ
		}
		return 0, false, inputErrorf("%d entities are named %q (types %s): give the entity_type or the id", len(ms), r.Name, strings.Join(types, ", "))
	}
}

// RelationInput states a fact: source —relation_type→ target.
type RelationInput struct {
	Source, Target EntityRef
	// Type is the relation, e.g. fixed_by, depends_on, caused.
	Type string
	// Fact says it in words, e.g. "pinning numpy<2 fixed the dashboard's ModuleNotFoundError".
	Fact string
	// ValidAt is when the fact became true; default now.
	ValidAt time.Time
	// EpisodeID is the episode the fact was learned from, if any.
	EpisodeID int64
	// Invalidate ends the current fact (invalid_at = ValidAt or now) instead of stating one.
	Invalidate bool
}

// RelationWritten is what Relate did. Invalidated lists the facts it ended (kept, with
// invalid_at set); ID is 0 when it only invalidated.
type RelationWritten struct {
	ID          int64   `json:"id,omitempty"`
	Created     bool    `json:"created"`
	SourceID    int64   `json:"source_id"`
	TargetID    int64   `json:"target_id"`
	Invalidated []int64 `json:"invalidated"`
}

// Relate records a relation between two entities (created if named with a type and missing).
// The same fact again changes nothing; a different fact for the same source, type and target
// replaces the current one, which is kept with invalid_at set.
func (s *Store) Relate(ctx context.Context, in RelationInput) (RelationWritten, error) {
	if err := in.Source.check("source"); err != nil {
		return RelationWritten{}, err
	}
	if err := in.Target.check("target"); err != nil {
		return RelationWritten{}, err
	}
	in.Type = strings.TrimSpace(in.Type)
	if in.Type == "" || len(in.Type) > MaxTypeLen {
		return RelationWritten{}, inputErrorf("relation_type is required (at most %d bytes), e.g. fixed_by or depends_on", MaxTypeLen)
	}
	if len(in.Fact) > MaxTextLen {
		return RelationWritten{}, inputErrorf("fact is %d bytes; at most %d", len(in.Fact), MaxTextLen)
	}
	var when *time.Time
	if !in.ValidAt.IsZero() {
		when = &in.ValidAt
	}
	var episode *int64
	if in.EpisodeID != 0 {
		episode = &in.EpisodeID
	}
	var w RelationWritten
	err := s.write(ctx, func(tx pgx.Tx) (bool, error) {
		w = RelationWritten{Invalidated: []int64{}}
		var created1, created2 bool
		var err error
		if w.SourceID, created1, err = resolve(ctx, tx, in.Source, !in.Invalidate); err != nil {
			return false, err
		}
		if w.TargetID, created2, err = resolve(ctx, tx, in.Target, !in.Invalidate); err != nil {
			return false, err
		}
		pending := created1 || created2
		var curID int64
		var curFact *string
		err = tx.QueryRow(ctx, currentRelationSQL, w.SourceID, in.Type, w.TargetID).Scan(&curID, &curFact)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return false, err
		}
		if in.Invalidate {
			if curID == 0 {
				return false, &NotFoundError{Kind: "relation", What: in.Source.String() + " " + in.Type + " " + in.Target.String() + " (current)"}
			}
		} else if curID != 0 && strings.TrimSpace(deref(curFact)) == strings.TrimSpace(in.Fact) {
			w.ID = curID
			return pending, nil
		}
		if curID != 0 {
			if _, err := tx.Exec(ctx, invalidateRelationSQL, curID, when); err != nil {
				return false, err
			}
			w.Invalidated = append(w.Invalidated, curID)
		}
		if in.Invalidate {
			return pending, nil
		}
		err = tx.QueryRow(ctx, insertRelationSQL, w.SourceID, w.TargetID, in.Type, in.Fact, when, episode).Scan(&w.ID)
		w.Created = err == nil
		return pending, err
	})
	if err != nil {
		return RelationWritten{}, wrap(err, "relate %s %s %s", in.Source, in.Type, in.Target)
	}
	return w, nil
}

// write runs fn in a transaction and, when fn reports text to embed, queues the embed job in it.
// A transaction that lost a race for a unique key (two callers creating one entity or one
// current fact) is run again: the second run finds the winner's row.
func (s *Store) write(ctx context.Context, fn func(pgx.Tx) (bool, error)) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			pending, err := fn(tx)
			if err != nil || !pending || s.opts.Queue == nil {
				return err
			}
			return s.opts.Queue.EnqueueEmbed(ctx, tx)
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" {
			return err
		}
	}
	return err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
