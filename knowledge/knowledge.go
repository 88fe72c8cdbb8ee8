// Package knowledge is cairn's knowledge graph: entities (services, error types, people, files),
// the relations between them, and episodes (what happened), searched by meaning and by keyword.
// Writes return at once; text is embedded in the background (EmbedPending, run by River jobs that
// writes queue in their own transaction), and a vector is written only if the text it was made
// from is still the row's text. Tables and triggers are in migrations/0005_knowledge.sql.
package knowledge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/embed"
)

// Kinds of rows the graph embeds and searches.
const (
	KindEntity  = "entity"
	KindEpisode = "episode"
)

// Limits on what one call may write or ask for.
const (
	MaxNameLen    = 1000
	MaxTypeLen    = 200
	MaxTextLen    = 100_000
	MaxSearch     = 100
	MaxDepth      = 3
	MaxNeighbors  = 1000
	DefaultSearch = 10
)

// Queue puts the embed work of a write into the write's own transaction, so that a committed
// row always has a job and a rolled-back one never does.
type Queue interface {
	EnqueueEmbed(ctx context.Context, tx pgx.Tx) error
}

// Options configure a Store; the zero value is usable.
type Options struct {
	// Queue receives a job for every write that leaves text to embed; nil leaves the rows to the
	// periodic sweep (see jobs.AddEmbedding), which is also what embeds rows written by raw SQL.
	Queue Queue
	// Embedder is the embedder this process was configured with. It embeds a kind until the
	// kind's model is recorded (by its first vectors); after that the recorded model is used.
	// nil makes every search a keyword search, saying why, and EmbedPending an error.
	Embedder embed.Embedder
	// Factory builds an embedder for a recorded model that is not Embedder's (another process,
	// or `cairn reindex`, chose it); nil means only Embedder's model can be used.
	Factory func(embed.Info) (embed.Embedder, error)
	// QueryTimeout bounds embedding a search query before the search falls back to keywords;
	// default 5 s.
	QueryTimeout time.Duration
	// Logger receives what the embed pipeline does; default slog.Default().
	Logger *slog.Logger
}

// Store is the knowledge graph's API over a pool. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	opts Options

	mu sync.Mutex
	// recorded caches knowledge_models for modelsTTL, so that a reindex's switch reaches every
	// process within that time (searches check the labels in their own snapshot and retry).
	recorded   map[string]embed.Info
	recordedAt time.Time
	// built holds the embedders Factory made, by label.
	built map[string]embed.Embedder
}

// modelsTTL is how long a process trusts its copy of the recorded models.
const modelsTTL = time.Second

// New returns a Store on the pool.
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Store{pool: pool, opts: opts, built: map[string]embed.Embedder{}}
}

// ModelLabel is what is stored in embedding_model for vectors an embedder makes:
// provider/model/dimensions, e.g. "ollama/nomic-embed-text/768".
func ModelLabel(i embed.Info) string { return i.String() }

// Models returns the model recorded for each kind that has vectors, by kind.
func (s *Store) Models(ctx context.Context) (map[string]embed.Info, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.recorded != nil && time.Since(s.recordedAt) < modelsTTL {
		return s.recorded, nil
	}
	rows, err := s.pool.Query(ctx, modelsSQL)
	if err != nil {
		return nil, wrap(err, "read the knowledge models")
	}
	m := map[string]embed.Info{}
	for rows.Next() {
		var kind string
		var i embed.Info
		if err := rows.Scan(&kind, &i.Provider, &i.Model, &i.Dimensions); err != nil {
			return nil, wrap(err, "read the knowledge models")
		}
		m[kind] = i
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "read the knowledge models")
	}
	s.recorded, s.recordedAt = m, time.Now()
	return m, nil
}

// forgetModels drops the cached models, after a search saw that they changed.
func (s *Store) forgetModels() {
	s.mu.Lock()
	s.recorded = nil
	s.mu.Unlock()
}

// knows reports whether the cached models include kind.
func (s *Store) knows(kind string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.recorded[kind]
	return ok
}

// embedderFor returns the embedder of a kind — its recorded model's, or the configured one while
// none is recorded — and the size its vectors must have: the recorded model's, or the column's
// while none is recorded (a first model of the wrong size is refused, not recorded).
func (s *Store) embedderFor(ctx context.Context, kind string) (embed.Embedder, int, error) {
	models, err := s.Models(ctx)
	if err != nil {
		return nil, 0, err
	}
	rec, ok := models[kind]
	conf := s.opts.Embedder
	switch {
	case !ok && conf == nil, ok && conf == nil && s.opts.Factory == nil:
		return nil, 0, errors.New("no embedder is configured")
	case !ok:
		dims, err := s.ColumnDimensions(ctx, kind)
		return conf, dims, err
	case conf != nil && conf.Info() == rec:
		return conf, rec.Dimensions, nil
	case s.opts.Factory == nil:
		return nil, 0, fmt.Errorf("the graph's %s are embedded with %s but this process has %s; configure that model (or run `cairn reindex`)", Plural(kind), rec, conf.Info())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	label := ModelLabel(rec)
	if e, ok := s.built[label]; ok {
		return e, rec.Dimensions, nil
	}
	e, err := s.opts.Factory(rec)
	if err != nil {
		return nil, 0, fmt.Errorf("embedder for the recorded model %s: %w", label, err)
	}
	s.built[label] = e
	return e, rec.Dimensions, nil
}

// ColumnDimensions returns the size of a kind's vector column (768 unless re-indexed).
func (s *Store) ColumnDimensions(ctx context.Context, kind string) (int, error) {
	var typmod int
	err := s.pool.QueryRow(ctx, columnDimensionsSQL, Plural(kind)).Scan(&typmod)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, ErrUnavailable
		}
		return 0, fmt.Errorf("read the size of %s.embedding: %w", Plural(kind), err)
	}
	if typmod <= 0 {
		return 0, fmt.Errorf("%s.embedding has no fixed dimension: it must be vector(N)", Plural(kind))
	}
	return typmod, nil
}

// Plural names a kind in the plural, which is also the name of its table: "entities", "episodes".
func Plural(kind string) string {
	if kind == KindEpisode {
		return "episodes"
	}
	return "entities"
}

// ErrUnavailable says the knowledge tables are missing, which happens when the server had no
// pgvector when cairn migrated.
var ErrUnavailable = &UnavailableError{}

// UnavailableError says the knowledge graph cannot be used on this database and how to fix it.
type UnavailableError struct{}

// CallerCanFix marks the error as one the operator fixes; the agent sees it as a tool error.
func (*UnavailableError) CallerCanFix() {}

func (*UnavailableError) Error() string {
	return "the knowledge graph is not set up on this database: it needs the pgvector extension. Install it (postgresql-NN-pgvector, or scripts/ensure-pgvector.sh), then run `cairn migrate`"
}

// NotFoundError says an entity, episode or relation does not exist.
type NotFoundError struct {
	Kind string
	What string
}

// CallerCanFix marks NotFoundError as the caller's to fix.
func (*NotFoundError) CallerCanFix() {}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("%s %s does not exist (knowledge_search finds what there is)", e.Kind, e.What)
}

func inputErrorf(format string, args ...any) error { return callerr.Inputf(format, args...) }

// EntityRef names an entity by id, or by name and (unless the name is unique) type.
type EntityRef struct {
	ID   int64  `json:"id,omitempty"`
	Name string `json:"name,omitempty"`
	Type string `json:"entity_type,omitempty"`
}

func (r EntityRef) String() string {
	switch {
	case r.ID != 0:
		return fmt.Sprintf("#%d", r.ID)
	case r.Type != "":
		return fmt.Sprintf("%q of type %q", r.Name, r.Type)
	default:
		return fmt.Sprintf("%q", r.Name)
	}
}

func (r EntityRef) check(what string) error {
	if r.ID < 0 {
		return inputErrorf("%s: id %d is not an entity id", what, r.ID)
	}
	if r.ID == 0 && strings.TrimSpace(r.Name) == "" {
		return inputErrorf("%s: give the entity's id, or its name (and entity_type)", what)
	}
	if r.ID != 0 && r.Name != "" {
		return inputErrorf("%s: give the id or the name, not both", what)
	}
	if len(r.Name) > MaxNameLen || len(r.Type) > MaxTypeLen {
		return inputErrorf("%s: name at most %d bytes, entity_type at most %d", what, MaxNameLen, MaxTypeLen)
	}
	return nil
}

// missingSchema reports whether an undefined-object message is about the knowledge schema
// itself, rather than a mistake in a statement.
func missingSchema(msg string) bool {
	for _, name := range []string{`"entities"`, `"episodes"`, `"relations"`, `"episode_mentions"`, `"knowledge_models"`, "cairn_knowledge_"} {
		if strings.Contains(msg, name) && strings.Contains(msg, "does not exist") {
			return true
		}
	}
	return false
}

// wrap turns a missing table into ErrUnavailable, leaves nil and typed errors alone, and wraps
// the rest.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if callerr.Is(err) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", "42883": // undefined table or function: was the migration deferred?
			if missingSchema(pe.Message) {
				return ErrUnavailable
			}
		case "23514", "22001", "22P02", "23503":
			return fmt.Errorf(format+": %w", append(args, &callerr.Input{Msg: pe.Message})...)
		}
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
