// Package knowledge is cairn's knowledge graph: entities (services, error types, people, files),
// the relations between them, and episodes (what happened), searched by meaning and by keyword.
// Writes return at once; text is embedded in the background (EmbedPending, run by River jobs that
// writes queue in their own transaction), and a vector is written only if the text it was made
// from is still the row's text. Tables and triggers are in sql/migrations/0005_knowledge.sql.
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
	// Embedder embeds search queries; nil makes every search a keyword search, saying why.
	Embedder embed.Embedder
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

	dimsMu sync.Mutex
	dims   int
}

// New returns a Store on the pool.
func New(pool *pgxpool.Pool, opts Options) *Store {
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 5 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Store{pool: pool, opts: opts}
}

// Embedder returns the embedder the store searches with, nil if none.
func (s *Store) Embedder() embed.Embedder { return s.opts.Embedder }

// ModelLabel is what is stored in embedding_model for vectors an embedder makes:
// provider/model/dimensions, e.g. "ollama/nomic-embed-text/768".
func ModelLabel(i embed.Info) string { return i.String() }

// VectorDimensions returns the size of the graph's vector columns (768 unless re-indexed), so
// that the built-in embedder can be made to match and a model of another size refused.
func (s *Store) VectorDimensions(ctx context.Context) (int, error) {
	s.dimsMu.Lock()
	defer s.dimsMu.Unlock()
	if s.dims > 0 {
		return s.dims, nil
	}
	var typmod int
	err := s.pool.QueryRow(ctx, `SELECT atttypmod FROM pg_attribute
		WHERE attrelid = to_regclass('entities') AND attname = 'embedding' AND NOT attisdropped`).Scan(&typmod)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return 0, ErrUnavailable
		}
		return 0, fmt.Errorf("read knowledge vector size: %w", err)
	}
	if typmod <= 0 {
		return 0, errors.New("entities.embedding has no fixed dimension: it must be vector(N)")
	}
	s.dims = typmod
	return typmod, nil
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

// InputError is a bad argument the caller must fix.
type InputError = callerr.Input

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

// wrap turns a missing table into ErrUnavailable, leaves typed errors alone, and wraps the rest.
func wrap(err error, format string, args ...any) error {
	if callerr.Is(err) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "42P01", "42883": // undefined table or function: the migration was deferred
			return ErrUnavailable
		case "23514", "22001", "22P02", "23503":
			return fmt.Errorf(format+": %w", append(args, &InputError{Msg: pe.Message})...)
		}
	}
	return fmt.Errorf(format+": %w", append(args, err)...)
}
