package mcp

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/knowledge"
)

// KnowledgeSearchArgs are the arguments of knowledge_search.
type KnowledgeSearchArgs struct {
	Query       string   `json:"query" jsonschema:"what you are looking for, in words, e.g. ModuleNotFoundError numpy dashboard startup"`
	Kinds       []string `json:"kinds,omitempty" jsonschema:"entity and/or episode; default both (or the kind a type filter implies)"`
	EntityType  string   `json:"entity_type,omitempty" jsonschema:"only entities of this type, e.g. error or service"`
	EpisodeType string   `json:"episode_type,omitempty" jsonschema:"only episodes of this type, e.g. error or deployment"`
	Since       string   `json:"since,omitempty" jsonschema:"only entities created / episodes that occurred at or after this RFC 3339 time or date, e.g. 2026-11-20T00:00:00Z"`
	Limit       int      `json:"limit,omitempty" jsonschema:"how many results (default 10, at most 100)"`
	Mode        string   `json:"mode,omitempty" jsonschema:"hybrid (default: meaning and keywords fused), semantic or keyword"`
}

// EntityArg names an entity: an id (number) or a name (string).
type EntityArg = json.RawMessage

// KnowledgeUpsertEntityArgs are the arguments of knowledge_upsert_entity.
type KnowledgeUpsertEntityArgs struct {
	Name       string          `json:"name" jsonschema:"the entity's name, e.g. ModuleNotFoundError; case and spacing do not make a new entity"`
	EntityType string          `json:"entity_type,omitempty" jsonschema:"its type, e.g. error, service, person, file (default entity)"`
	Summary    *string         `json:"summary,omitempty" jsonschema:"what it is, in a sentence or two; replaces the current summary"`
	Context    *string         `json:"context,omitempty" jsonschema:"the predecessor's name for summary (same column); give one of the two"`
	Attributes json.RawMessage `json:"attributes,omitempty" jsonschema:"a JSON object merged key by key into the entity's attributes"`
}

// MentionArg is an entity an episode mentions.
type MentionArg struct {
	ID         int64  `json:"id,omitempty" jsonschema:"the entity's id"`
	Name       string `json:"name,omitempty" jsonschema:"or its name"`
	EntityType string `json:"entity_type,omitempty" jsonschema:"with its type: an entity named with a type is created if missing"`
}

// KnowledgeAddEpisodeArgs are the arguments of knowledge_add_episode.
type KnowledgeAddEpisodeArgs struct {
	Name              string          `json:"name,omitempty" jsonschema:"a short title, e.g. dashboard-startup-failure"`
	Content           string          `json:"content" jsonschema:"what happened, in words: the error message, what was deployed, what was decided"`
	EpisodeType       string          `json:"episode_type,omitempty" jsonschema:"e.g. error, deployment, conversation (default event)"`
	SourceDescription string          `json:"source_description,omitempty" jsonschema:"where it came from, e.g. journal or CI run 4521"`
	Metadata          json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object of your own"`
	OccurredAt        string          `json:"occurred_at,omitempty" jsonschema:"when it happened, RFC 3339 (default now)"`
	Entities          []MentionArg    `json:"entities,omitempty" jsonschema:"the entities involved"`
	IdempotencyKey    string          `json:"idempotency_key,omitempty" jsonschema:"the same key again returns the first episode and writes nothing: safe retries"`
}

// KnowledgeRelateArgs are the arguments of knowledge_relate.
type KnowledgeRelateArgs struct {
	Source       EntityArg `json:"source" jsonschema:"the entity the fact is about: its id (number) or name (string)"`
	SourceType   string    `json:"source_type,omitempty" jsonschema:"the source's entity_type when named; a named entity with a type is created if missing"`
	RelationType string    `json:"relation_type" jsonschema:"the relation, e.g. fixed_by, depends_on, caused, owned_by"`
	Target       EntityArg `json:"target" jsonschema:"the other entity: id (number) or name (string)"`
	TargetType   string    `json:"target_type,omitempty" jsonschema:"the target's entity_type when named"`
	Fact         string    `json:"fact,omitempty" jsonschema:"the fact in words, e.g. pinning numpy<2 fixed it"`
	ValidAt      string    `json:"valid_at,omitempty" jsonschema:"when the fact became true (or, with invalidate, stopped being), RFC 3339; default now"`
	EpisodeID    int64     `json:"episode_id,omitempty" jsonschema:"the episode the fact was learned from"`
	Invalidate   bool      `json:"invalidate,omitempty" jsonschema:"end the current fact instead of stating one (it is kept, with invalid_at set)"`
}

// KnowledgeGetArgs are the arguments of knowledge_get.
type KnowledgeGetArgs struct {
	Kind           string `json:"kind,omitempty" jsonschema:"entity (default) or episode"`
	ID             int64  `json:"id,omitempty" jsonschema:"the entity's or episode's id"`
	Name           string `json:"name,omitempty" jsonschema:"or an entity's name"`
	EntityType     string `json:"entity_type,omitempty" jsonschema:"the entity's type, when the name is not unique"`
	IncludeInvalid bool   `json:"include_invalid,omitempty" jsonschema:"list replaced and ended facts too"`
}

// KnowledgeGetResult holds the entity or the episode asked for.
type KnowledgeGetResult struct {
	Entity  *knowledge.Entity  `json:"entity,omitempty"`
	Episode *knowledge.Episode `json:"episode,omitempty"`
}

// KnowledgeNeighborsArgs are the arguments of knowledge_neighbors.
type KnowledgeNeighborsArgs struct {
	Entity         EntityArg `json:"entity" jsonschema:"where to start: an entity id (number) or name (string)"`
	EntityType     string    `json:"entity_type,omitempty" jsonschema:"its type, when the name is not unique"`
	Depth          int       `json:"depth,omitempty" jsonschema:"how many relations away, 1 to 3 (default 1)"`
	RelationTypes  []string  `json:"relation_types,omitempty" jsonschema:"follow only these relations"`
	IncludeInvalid bool      `json:"include_invalid,omitempty" jsonschema:"follow replaced and ended facts too"`
	Limit          int       `json:"limit,omitempty" jsonschema:"most entities returned (default 100, at most 1000)"`
}

// entityRef reads an id-or-name argument.
func entityRef(what string, raw EntityArg, typ string) (knowledge.EntityRef, error) {
	var v any
	if err := decodeArgs(raw, &v); err != nil || v == nil {
		return knowledge.EntityRef{}, &knowledge.InputError{Msg: what + " is required: an entity id (number) or name (string)"}
	}
	switch x := v.(type) {
	case json.Number:
		id, err := strconv.ParseInt(x.String(), 10, 64)
		if err != nil || id <= 0 {
			return knowledge.EntityRef{}, &knowledge.InputError{Msg: what + " " + x.String() + " is not an entity id (a positive whole number)"}
		}
		if strings.TrimSpace(typ) != "" {
			return knowledge.EntityRef{}, &knowledge.InputError{Msg: what + ": a type goes with a name, not an id"}
		}
		return knowledge.EntityRef{ID: id}, nil
	case string:
		return knowledge.EntityRef{Name: x, Type: typ}, nil
	default:
		return knowledge.EntityRef{}, &knowledge.InputError{Msg: what + " must be an entity id (number) or name (string)"}
	}
}

func (s *Server) addKnowledgeTools() {
	kg := s.knowledge
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "knowledge_search", Title: "Search the knowledge graph", Annotations: ro,
		Description: `Search entities and episodes by meaning and keywords ("have we seen this error before, and what fixed it?"). hybrid (default) fuses a vector search and a full-text search by reciprocal rank; semantic or keyword use one. Filters still return a full page when enough rows match.
New rows are found by keyword at once and by meaning once embedded (seconds). If the query cannot be embedded right now, the search uses keywords and says so in "fallback".
Example: {"query": "ModuleNotFoundError numpy on dashboard startup", "episode_type": "error", "since": "2026-11-01", "limit": 5}
Returns {"results": [{"kind", "id", "name", "type", "text", "score", "semantic_rank", "keyword_rank", "distance", "embed_state", "at"}], "mode", "fallback", "model"}; knowledge_get gives a result in full, with its relations.`},
		func(ctx context.Context, in KnowledgeSearchArgs) (knowledge.SearchResult, error) {
			since, err := parseTime("since", in.Since)
			if err != nil {
				return knowledge.SearchResult{}, err
			}
			return kg.Search(ctx, knowledge.SearchQuery{Query: in.Query, Kinds: in.Kinds, EntityType: in.EntityType, EpisodeType: in.EpisodeType,
				Since: since, Limit: in.Limit, Mode: in.Mode})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_add_episode", Title: "Record an episode", Annotations: write,
		Description: `Record something that happened — an error, a deployment, a conversation — and the entities involved (created if named with a type and missing). Returns the ids at once; the text is embedded in the background.
Example: {"name": "dashboard-startup-failure", "content": "ModuleNotFoundError: No module named 'numpy' when the dashboard starts", "episode_type": "error", "source_description": "journal", "entities": [{"name": "ModuleNotFoundError", "entity_type": "error"}, {"name": "dashboard", "entity_type": "service"}]}
Pass idempotency_key to make retries safe. Returns {"kind": "episode", "id", "created", "embedding": "pending", "mentions": [entity ids], "duplicate"}.`},
		func(ctx context.Context, in KnowledgeAddEpisodeArgs) (knowledge.EpisodeWritten, error) {
			occurred, err := parseTime("occurred_at", in.OccurredAt)
			if err != nil {
				return knowledge.EpisodeWritten{}, err
			}
			ms := make([]knowledge.EntityRef, len(in.Entities))
			for i, m := range in.Entities {
				ms[i] = knowledge.EntityRef{ID: m.ID, Name: m.Name, Type: m.EntityType}
			}
			return kg.AddEpisode(ctx, knowledge.EpisodeInput{Name: in.Name, Content: in.Content, Type: in.EpisodeType,
				SourceDescription: in.SourceDescription, Metadata: in.Metadata, OccurredAt: occurred, Mentions: ms, IdempotencyKey: in.IdempotencyKey})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_upsert_entity", Title: "Create or update an entity", Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true, OpenWorldHint: ptr(false)},
		Description: `Create an entity, or update the one of the same type and name (case and spacing ignored: the same error type recorded twice is one entity). summary replaces the summary; attributes are merged.
Example: {"name": "ModuleNotFoundError", "entity_type": "error", "summary": "Python cannot import a module; usually a missing or mis-pinned dependency"}
Returns {"kind": "entity", "id", "created", "embedding"}.`},
		func(ctx context.Context, in KnowledgeUpsertEntityArgs) (knowledge.Written, error) {
			summary := in.Summary
			if in.Context != nil {
				if summary != nil && *summary != *in.Context {
					return knowledge.Written{}, &knowledge.InputError{Msg: "summary and context are the same field under two names: give one"}
				}
				summary = in.Context
			}
			return kg.UpsertEntity(ctx, knowledge.EntityInput{Name: in.Name, Type: in.EntityType, Summary: summary, Attributes: in.Attributes})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_relate", Title: "State a fact between entities", Annotations: write,
		Description: `Record that source —relation_type→ target, with the fact in words. Entities are given by id, or by name (with source_type / target_type, they are created if missing). The same fact again changes nothing; a new fact for the same source, relation and target replaces the current one, which is kept with invalid_at set (history is never deleted). invalidate: true ends the current fact.
Example: {"source": "ModuleNotFoundError", "source_type": "error", "relation_type": "fixed_by", "target": "pin numpy<2", "target_type": "fix", "fact": "pinning numpy<2 in requirements.txt fixed the dashboard start-up"}
Returns {"id", "created", "source_id", "target_id", "invalidated": [ids of facts it replaced]}.`},
		func(ctx context.Context, in KnowledgeRelateArgs) (knowledge.RelationWritten, error) {
			src, err := entityRef("source", in.Source, in.SourceType)
			if err != nil {
				return knowledge.RelationWritten{}, err
			}
			dst, err := entityRef("target", in.Target, in.TargetType)
			if err != nil {
				return knowledge.RelationWritten{}, err
			}
			validAt, err := parseTime("valid_at", in.ValidAt)
			if err != nil {
				return knowledge.RelationWritten{}, err
			}
			return kg.Relate(ctx, knowledge.RelationInput{Source: src, Target: dst, Type: in.RelationType, Fact: in.Fact,
				ValidAt: validAt, EpisodeID: in.EpisodeID, Invalidate: in.Invalidate})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_get", Title: "Get an entity or episode", Annotations: ro,
		Description: `Get an entity (by id, or by name and entity_type) with its current relations in both directions and the latest episodes that mention it; or an episode (kind "episode", by id) with the entities it mentions. Each carries its embed_state (pending, embedded, failed with embed_error, or external).
Example: {"name": "ModuleNotFoundError", "entity_type": "error"} or {"kind": "episode", "id": 42}`},
		func(ctx context.Context, in KnowledgeGetArgs) (KnowledgeGetResult, error) {
			switch in.Kind {
			case "", knowledge.KindEntity:
				e, err := kg.GetEntity(ctx, knowledge.EntityRef{ID: in.ID, Name: in.Name, Type: in.EntityType}, in.IncludeInvalid)
				if err != nil {
					return KnowledgeGetResult{}, err
				}
				return KnowledgeGetResult{Entity: &e}, nil
			case knowledge.KindEpisode:
				if in.Name != "" || in.EntityType != "" {
					return KnowledgeGetResult{}, &knowledge.InputError{Msg: "episodes are fetched by id; name and entity_type are for entities"}
				}
				p, err := kg.GetEpisode(ctx, in.ID)
				if err != nil {
					return KnowledgeGetResult{}, err
				}
				return KnowledgeGetResult{Episode: &p}, nil
			default:
				return KnowledgeGetResult{}, &knowledge.InputError{Msg: "kind " + quote(in.Kind) + ": use entity or episode"}
			}
		})
	addTool(s, &sdk.Tool{Name: "knowledge_neighbors", Title: "Walk the graph", Annotations: ro,
		Description: `The entities within depth (1 to 3) relations of an entity, in both directions, each with its distance, and the relations between them. Cycles are safe: each entity is visited once.
Example: {"entity": "ModuleNotFoundError", "entity_type": "error", "depth": 2, "relation_types": ["fixed_by", "caused"]}`},
		func(ctx context.Context, in KnowledgeNeighborsArgs) (knowledge.Neighborhood, error) {
			ref, err := entityRef("entity", in.Entity, in.EntityType)
			if err != nil {
				return knowledge.Neighborhood{}, err
			}
			return kg.Neighbors(ctx, knowledge.NeighborsQuery{Entity: ref, Depth: in.Depth, RelationTypes: in.RelationTypes,
				IncludeInvalid: in.IncludeInvalid, Limit: in.Limit})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_status", Title: "Knowledge graph status", Annotations: ro,
		Description: `The embedder in use (provider, model, dimensions), rows per kind by embed state (embedded, pending, failed, external, other_model), how long the oldest pending row has waited, the models vectors were made with, why rows failed, and warnings. Example: {}`},
		func(ctx context.Context, _ NoArgs) (knowledge.Status, error) {
			return kg.Status(ctx)
		})
}
