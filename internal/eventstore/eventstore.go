// Package eventstore is cairn's append-only event log in PostgreSQL, shared by every domain
// module: streams with per-stream versions (optimistic concurrency) and idempotent appends.
// Each event also records its transaction id, so that a global reader in commit-safe order
// (events of transactions older than the snapshot's xmin, by transaction id and position) can
// be built on it when something needs one.
//
// Appends run inside the caller's transaction, so a domain module appends its events and updates
// its projections atomically. The SQL lives in migrations (cairn_append_events).
package eventstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Expected versions with a special meaning; any positive number means "the stream is at exactly
// this version".
const (
	// AnyVersion appends whatever the stream's version (no concurrency check).
	AnyVersion int64 = -1
	// NoStream requires that the stream does not exist yet.
	NoStream int64 = 0
)

// Querier is a connection, pool or transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Metadata travels with an event: who did it and why.
type Metadata struct {
	CorrelationID string         `json:"correlation_id,omitempty"`
	CausationID   string         `json:"causation_id,omitempty"`
	Actor         string         `json:"actor,omitempty"`
	Extra         map[string]any `json:"extra,omitempty"`
}

// NewEvent is an event to append. Data is any JSON-marshalable value (json.RawMessage as is).
type NewEvent struct {
	Type     string
	Data     any
	Metadata Metadata
}

// Event is a stored event.
type Event struct {
	Position  int64           `json:"position"`
	StreamID  string          `json:"stream_id"`
	Version   int64           `json:"version"`
	Type      string          `json:"type"`
	Data      json.RawMessage `json:"data"`
	Metadata  json.RawMessage `json:"metadata"`
	TxID      uint64          `json:"-"`
	CreatedAt time.Time       `json:"created_at"`
}

// AppendOptions qualify an append.
type AppendOptions struct {
	// ExpectedVersion is the version the stream must be at: NoStream (the zero value) for a new
	// stream, AnyVersion to skip the check, or the exact version.
	ExpectedVersion int64
	// IdempotencyKey, when set, makes a retry of the same append (same stream, same key) return
	// the first append's result and write nothing.
	IdempotencyKey string
}

// AppendResult says where the events went.
type AppendResult struct {
	StreamID     string
	FirstVersion int64
	LastVersion  int64
	Positions    []int64
	// Duplicate is true when the idempotency key had been used: nothing new was written.
	Duplicate bool
}

// ConflictError says the stream was not at the expected version: another writer got there first.
type ConflictError struct {
	StreamID        string
	ExpectedVersion int64
	CurrentVersion  int64
}

// CallerCanFix marks ConflictError as the caller's to fix (reload, then retry).
func (*ConflictError) CallerCanFix() {}

func (e *ConflictError) Error() string {
	return fmt.Sprintf("version conflict on %s: expected version %d, but it is at %d (another writer saved first); reload and retry with expected version %d",
		e.StreamID, e.ExpectedVersion, e.CurrentVersion, e.CurrentVersion)
}

// Limits on names, so keys stay well under PostgreSQL's btree limits.
const (
	MaxStreamIDLen = 200
	MaxTypeLen     = 200
	MaxKeyLen      = 200
)

// Append appends events to a stream in the caller's transaction (or as its own statement on a
// pool). A version mismatch returns *ConflictError and, as any error from the database, aborts
// the caller's transaction.
func Append(ctx context.Context, q Querier, streamID string, events []NewEvent, opts AppendOptions) (AppendResult, error) {
	if err := checkName("stream id", streamID, MaxStreamIDLen); err != nil {
		return AppendResult{}, err
	}
	if len(events) == 0 {
		return AppendResult{}, errors.New("append: no events")
	}
	if opts.ExpectedVersion < AnyVersion {
		return AppendResult{}, fmt.Errorf("append to %s: expected version %d: use -1 (any), 0 (new stream) or the stream's version", streamID, opts.ExpectedVersion)
	}
	if len(opts.IdempotencyKey) > MaxKeyLen {
		return AppendResult{}, fmt.Errorf("append to %s: idempotency key is %d bytes; at most %d", streamID, len(opts.IdempotencyKey), MaxKeyLen)
	}
	types := make([]string, len(events))
	data := make([]string, len(events))
	meta := make([]string, len(events))
	for i, e := range events {
		if err := checkName("event type", e.Type, MaxTypeLen); err != nil {
			return AppendResult{}, err
		}
		types[i] = e.Type
		d, err := marshalData(e.Data)
		if err != nil {
			return AppendResult{}, fmt.Errorf("append %s to %s: encode data: %w", e.Type, streamID, err)
		}
		data[i] = d
		m, err := json.Marshal(e.Metadata)
		if err != nil {
			return AppendResult{}, fmt.Errorf("append %s to %s: encode metadata: %w", e.Type, streamID, err)
		}
		meta[i] = string(m)
	}
	var key *string
	if opts.IdempotencyKey != "" {
		key = &opts.IdempotencyKey
	}
	res := AppendResult{StreamID: streamID}
	err := q.QueryRow(ctx, appendEventsSQL,
		streamID, opts.ExpectedVersion, types, data, meta, key).
		Scan(&res.FirstVersion, &res.LastVersion, &res.Positions, &res.Duplicate)
	if err != nil {
		if ce := AsConflict(err, streamID, opts.ExpectedVersion); ce != nil {
			return res, ce
		}
		return res, fmt.Errorf("append to %s: %w", streamID, err)
	}
	return res, nil
}

func marshalData(v any) (string, error) {
	switch d := v.(type) {
	case nil:
		return "{}", nil
	case json.RawMessage:
		if !json.Valid(d) {
			return "", errors.New("data is not valid JSON")
		}
		return string(d), nil
	}
	b, err := json.Marshal(v)
	return string(b), err
}

// AsConflict returns the *ConflictError that cairn_append_events raised inside a statement
// (also one that called it indirectly, such as cairn_checkpoint_save), or nil.
func AsConflict(err error, streamID string, expected int64) *ConflictError {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "CA001" {
		return nil
	}
	cur, _ := strconv.ParseInt(strings.TrimPrefix(pe.Detail, "current_version="), 10, 64)
	return &ConflictError{StreamID: streamID, ExpectedVersion: expected, CurrentVersion: cur}
}

func checkName(what, s string, maxLen int) error {
	if s == "" {
		return fmt.Errorf("%s is empty", what)
	}
	if len(s) > maxLen {
		return fmt.Errorf("%s is %d bytes; at most %d", what, len(s), maxLen)
	}
	return nil
}

// StreamVersion returns a stream's current version, 0 when it does not exist.
func StreamVersion(ctx context.Context, q Querier, streamID string) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, streamVersionSQL, streamID).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read version of %s: %w", streamID, err)
	}
	return v, nil
}

// ReadStream returns up to limit events of one stream with versions after afterVersion, oldest
// first.
func ReadStream(ctx context.Context, q Querier, streamID string, afterVersion int64, limit int) ([]Event, error) {
	rows, err := q.Query(ctx, readStreamSQL, streamID, afterVersion, limit)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	evs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read stream %s: %w", streamID, err)
	}
	return evs, nil
}

func collect(rows pgx.Rows) ([]Event, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Event, error) {
		var e Event
		var tx int64
		err := r.Scan(&e.Position, &e.StreamID, &e.Version, &e.Type, &e.Data, &e.Metadata, &tx, &e.CreatedAt)
		e.TxID = uint64(tx)
		return e, err
	})
}

// Channel is the LISTEN/NOTIFY channel appends notify at commit (workflow subscriptions listen
// on it).
const Channel = "cairn_events"
