package mcp

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/knowledge"
)

// KnowledgeSearchArgs are the arguments of knowledge_search.
type KnowledgeSearchArgs struct {
	Query       string   `json:"query"`
	Kinds       []string `json:"kinds,omitempty" jsonschema:"entity, episode; default both"`
	EntityType  string   `json:"entity_type,omitempty"`
	EpisodeType string   `json:"episode_type,omitempty"`
	Since       string   `json:"since,omitempty" jsonschema:"RFC 3339 time or date"`
	Limit       int      `json:"limit,omitempty" jsonschema:"default 10, at most 100"`
	Mode        string   `json:"mode,omitempty" jsonschema:"hybrid (default), semantic or keyword"`
}

// EntityArg names an entity: an id (number) or a name (string).
type EntityArg = json.RawMessage

// KnowledgeUpsertEntityArgs are the arguments of knowledge_upsert_entity.
type KnowledgeUpsertEntityArgs struct {
	Name       string          `json:"name"`
	EntityType string          `json:"entity_type,omitempty" jsonschema:"e.g. error, service; default entity"`
	Summary    *string         `json:"summary,omitempty" jsonschema:"replaces the current one"`
	Context    *string         `json:"context,omitempty" jsonschema:"the same as summary"`
	Attributes json.RawMessage `json:"attributes,omitempty" jsonschema:"merged key by key"`
}

// MentionArg is an entity an episode mentions.
type MentionArg struct {
	ID         int64  `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	EntityType string `json:"entity_type,omitempty" jsonschema:"with name: created if missing"`
}

// KnowledgeAddEpisodeArgs are the arguments of knowledge_add_episode.
type KnowledgeAddEpisodeArgs struct {
	Name              string          `json:"name,omitempty"`
	Content           string          `json:"content"`
	EpisodeType       string          `json:"episode_type,omitempty" jsonschema:"e.g. error, deployment; default event"`
	SourceDescription string          `json:"source_description,omitempty"`
	Metadata          json.RawMessage `json:"metadata,omitempty" jsonschema:"a JSON object"`
	OccurredAt        string          `json:"occurred_at,omitempty" jsonschema:"RFC 3339; default now"`
	Entities          []MentionArg    `json:"entities,omitempty"`
	IdempotencyKey    string          `json:"idempotency_key,omitempty" jsonschema:"a retry writes nothing"`
}

// KnowledgeRelateArgs are the arguments of knowledge_relate.
type KnowledgeRelateArgs struct {
	Source       EntityArg `json:"source" jsonschema:"an entity id or name"`
	SourceType   string    `json:"source_type,omitempty" jsonschema:"with a name: created if missing"`
	RelationType string    `json:"relation_type" jsonschema:"e.g. fixed_by, depends_on"`
	Target       EntityArg `json:"target" jsonschema:"an entity id or name"`
	TargetType   string    `json:"target_type,omitempty" jsonschema:"with a name: created if missing"`
	Fact         string    `json:"fact,omitempty"`
	ValidAt      string    `json:"valid_at,omitempty" jsonschema:"RFC 3339; default now"`
	EpisodeID    int64     `json:"episode_id,omitempty"`
	Invalidate   bool      `json:"invalidate,omitempty" jsonschema:"end the current fact"`
}

// KnowledgeGetArgs are the arguments of knowledge_get.
type KnowledgeGetArgs struct {
	Kind           string `json:"kind,omitempty" jsonschema:"entity (default) or episode"`
	ID             int64  `json:"id,omitempty"`
	Name           string `json:"name,omitempty"`
	EntityType     string `json:"entity_type,omitempty"`
	IncludeInvalid bool   `json:"include_invalid,omitempty" jsonschema:"also replaced and ended facts"`
}

// KnowledgeGetResult holds the entity or the episode asked for.
type KnowledgeGetResult struct {
	Entity  *knowledge.Entity  `json:"entity,omitempty"`
	Episode *knowledge.Episode `json:"episode,omitempty"`
}

// KnowledgeNeighborsArgs are the arguments of knowledge_neighbors.
type KnowledgeNeighborsArgs struct {
	Entity         EntityArg `json:"entity" jsonschema:"an entity id or name"`
	EntityType     string    `json:"entity_type,omitempty"`
	Depth          int       `json:"depth,omitempty" jsonschema:"1 to 3, default 1"`
	RelationTypes  []string  `json:"relation_types,omitempty" jsonschema:"follow only these"`
	IncludeInvalid bool      `json:"include_invalid,omitempty" jsonschema:"also replaced and ended facts"`
	Limit          int       `json:"limit,omitempty" jsonschema:"default 100, at most 1000"`
}

// entityRef reads an id-or-name argument.
func entityRef(what string, raw EntityArg, typ string) (knowledge.EntityRef, error) {
	var v any
	if err := decodeArgs(raw, &v); err != nil || v == nil {
		return knowledge.EntityRef{}, &callerr.Input{Msg: what + " is required: an entity id (number) or name (string)"}
	}
	switch x := v.(type) {
	case json.Number:
		id, err := strconv.ParseInt(x.String(), 10, 64)
		if err != nil || id <= 0 {
			return knowledge.EntityRef{}, &callerr.Input{Msg: what + " " + x.String() + " is not an entity id (a positive whole number)"}
		}
		if strings.TrimSpace(typ) != "" {
			return knowledge.EntityRef{}, &callerr.Input{Msg: what + ": a type goes with a name, not an id"}
		}
		return knowledge.EntityRef{ID: id}, nil
	case string:
		return knowledge.EntityRef{Name: x, Type: typ}, nil
	default:
		return knowledge.EntityRef{}, &callerr.Input{Msg: what + " must be an entity id (number) or name (string)"}
	}
}

func (s *Server) addKnowledgeTools() {
	ro, write := readAnnotations(), writeAnnotations()
	addTool(s, &sdk.Tool{Name: "knowledge_search", Title: "Search the knowledge graph", Annotations: ro,
		Description: `Search entities and episodes by meaning and keywords; "fallback" says why when it could only use keywords. Example: {"query": "numpy missing on dashboard start"}`},
		func(ctx context.Context, in KnowledgeSearchArgs) (knowledge.SearchResult, error) {
			since, err := parseTime("since", in.Since)
			if err != nil {
				return knowledge.SearchResult{}, err
			}
			return s.knowledge.Search(ctx, knowledge.SearchQuery{Query: in.Query, Kinds: in.Kinds, EntityType: in.EntityType, EpisodeType: in.EpisodeType,
				Since: since, Limit: in.Limit, Mode: in.Mode})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_add_episode", Title: "Record an episode", Annotations: write,
		Description: `Record what happened and the entities involved; it is embedded in the background.
Example: {"content": "dashboard: ModuleNotFoundError numpy", "episode_type": "error", "entities": [{"name": "dashboard", "entity_type": "service"}]}`},
		func(ctx context.Context, in KnowledgeAddEpisodeArgs) (knowledge.EpisodeWritten, error) {
			occurred, err := parseTime("occurred_at", in.OccurredAt)
			if err != nil {
				return knowledge.EpisodeWritten{}, err
			}
			ms := make([]knowledge.EntityRef, len(in.Entities))
			for i, m := range in.Entities {
				ms[i] = knowledge.EntityRef{ID: m.ID, Name: m.Name, Type: m.EntityType}
			}
			return s.knowledge.AddEpisode(ctx, knowledge.EpisodeInput{Name: in.Name, Content: in.Content, Type: in.EpisodeType,
				SourceDescription: in.SourceDescription, Metadata: in.Metadata, OccurredAt: occurred, Mentions: ms, IdempotencyKey: in.IdempotencyKey})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_upsert_entity", Title: "Create or update an entity", Annotations: &sdk.ToolAnnotations{DestructiveHint: ptr(false), IdempotentHint: true},
		Description: `Create or update an entity, found by type and name (case and spacing ignored). Example: {"name": "OOMKilled", "entity_type": "error"}`},
		func(ctx context.Context, in KnowledgeUpsertEntityArgs) (knowledge.Written, error) {
			summary := in.Summary
			if in.Context != nil {
				if summary != nil && *summary != *in.Context {
					return knowledge.Written{}, &callerr.Input{Msg: "summary and context are the same field under two names: give one"}
				}
				summary = in.Context
			}
			return s.knowledge.UpsertEntity(ctx, knowledge.EntityInput{Name: in.Name, Type: in.EntityType, Summary: summary, Attributes: in.Attributes})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_relate", Title: "State a fact between entities", Annotations: write,
		Description: `State that source relation_type target. A new fact for the same three replaces the current one, which is kept as invalid.
Example: {"source": "OOMKilled", "source_type": "error", "relation_type": "fixed_by", "target": "raise memory limit", "target_type": "fix"}`},
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
			return s.knowledge.Relate(ctx, knowledge.RelationInput{Source: src, Target: dst, Type: in.RelationType, Fact: in.Fact,
				ValidAt: validAt, EpisodeID: in.EpisodeID, Invalidate: in.Invalidate})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_get", Title: "Get an entity or episode", Annotations: ro,
		Description: `An entity (by id, or name and entity_type) with its relations and latest episodes, or an episode (kind "episode"). Example: {"name": "OOMKilled", "entity_type": "error"}`},
		func(ctx context.Context, in KnowledgeGetArgs) (KnowledgeGetResult, error) {
			switch in.Kind {
			case "", knowledge.KindEntity:
				e, err := s.knowledge.GetEntity(ctx, knowledge.EntityRef{ID: in.ID, Name: in.Name, Type: in.EntityType}, in.IncludeInvalid)
				if err != nil {
					return KnowledgeGetResult{}, err
				}
				return KnowledgeGetResult{Entity: &e}, nil
			case knowledge.KindEpisode:
				if in.Name != "" || in.EntityType != "" {
					return KnowledgeGetResult{}, &callerr.Input{Msg: "episodes are fetched by id; name and entity_type are for entities"}
				}
				p, err := s.knowledge.GetEpisode(ctx, in.ID)
				if err != nil {
					return KnowledgeGetResult{}, err
				}
				return KnowledgeGetResult{Episode: &p}, nil
			default:
				return KnowledgeGetResult{}, &callerr.Input{Msg: "kind " + quote(in.Kind) + ": use entity or episode"}
			}
		})
	addTool(s, &sdk.Tool{Name: "knowledge_neighbors", Title: "Walk the graph", Annotations: ro,
		Description: `The entities up to depth relations away, both ways, and the relations between them. Example: {"entity": "OOMKilled", "depth": 2}`},
		func(ctx context.Context, in KnowledgeNeighborsArgs) (knowledge.Neighborhood, error) {
			ref, err := entityRef("entity", in.Entity, in.EntityType)
			if err != nil {
				return knowledge.Neighborhood{}, err
			}
			return s.knowledge.Neighbors(ctx, knowledge.NeighborsQuery{Entity: ref, Depth: in.Depth, RelationTypes: in.RelationTypes,
				IncludeInvalid: in.IncludeInvalid, Limit: in.Limit})
		})
	addTool(s, &sdk.Tool{Name: "knowledge_status", Title: "Knowledge graph status", Annotations: ro,
		Description: `The embedder, rows by embed state, the oldest pending row's wait, failures, warnings.`},
		func(ctx context.Context, _ NoArgs) (knowledge.Status, error) {
			return s.knowledge.Status(ctx)
		})
}
