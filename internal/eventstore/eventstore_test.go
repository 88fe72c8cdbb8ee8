package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/cairn-mcp/cairn/internal/eventstore"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

func ev(typ string, data any) eventstore.NewEvent { return eventstore.NewEvent{Type: typ, Data: data} }

func TestAppendAndReadStream(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()

	res, err := eventstore.Append(ctx, db.Pool, "wf-1", []eventstore.NewEvent{ev("Started", map[string]any{"name": "x"}), ev("Saved", nil)},
		eventstore.AppendOptions{ExpectedVersion: eventstore.NoStream})
	if err != nil {
		t.Fatal(err)
	}
	if res.FirstVersion != 1 || res.LastVersion != 2 || len(res.Positions) != 2 || res.Duplicate {
		t.Fatalf("result = %+v", res)
	}
	res, err = eventstore.Append(ctx, db.Pool, "wf-1", []eventstore.NewEvent{ev("Saved", json.RawMessage(`{"n":3}`))},
		eventstore.AppendOptions{ExpectedVersion: 2})
	if err != nil || res.FirstVersion != 3 {
		t.Fatalf("append at 2: %+v, %v", res, err)
	}

	tests := []struct {
		name     string
		expected int64
		current  int64
	}{
		{"stale version", 2, 3},
		{"stream exists", eventstore.NoStream, 3},
		{"future version", 7, 3},
	}
	for _, tc := range tests {
		_, err := eventstore.Append(ctx, db.Pool, "wf-1", []eventstore.NewEvent{ev("Saved", nil)}, eventstore.AppendOptions{ExpectedVersion: tc.expected})
		var ce *eventstore.ConflictError
		if !errors.As(err, &ce) || ce.CurrentVersion != tc.current || ce.ExpectedVersion != tc.expected {
			t.Errorf("%s: want conflict at %d, got %v", tc.name, tc.current, err)
		}
	}
	var ce *eventstore.ConflictError
	if _, err := eventstore.Append(ctx, db.Pool, "missing", []eventstore.NewEvent{ev("Saved", nil)}, eventstore.AppendOptions{ExpectedVersion: 1}); !errors.As(err, &ce) || ce.CurrentVersion != 0 {
		t.Errorf("append at 1 to a missing stream: %v", err)
	}
	if _, err := eventstore.Append(ctx, db.Pool, "wf-1", []eventstore.NewEvent{ev("Any", nil)}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion}); err != nil {
		t.Errorf("append with any version: %v", err)
	}

	evs, err := eventstore.ReadStream(ctx, db.Pool, "wf-1", 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Version != 2 || evs[1].Type != "Saved" || string(evs[1].Data) != `{"n": 3}` || evs[2].Type != "Any" {
		t.Fatalf("stream = %+v", evs)
	}
	if v, _ := eventstore.StreamVersion(ctx, db.Pool, "wf-1"); v != 4 {
		t.Errorf("version = %d", v)
	}

	for _, bad := range []struct {
		stream string
		events []eventstore.NewEvent
	}{
		{"", []eventstore.NewEvent{ev("A", nil)}},
		{"s", nil},
		{"s", []eventstore.NewEvent{ev("", nil)}},
		{string(make([]byte, 201)), []eventstore.NewEvent{ev("A", nil)}},
		{"s", []eventstore.NewEvent{ev("A", json.RawMessage(`{bad`))}},
	} {
		if _, err := eventstore.Append(ctx, db.Pool, bad.stream, bad.events, eventstore.AppendOptions{}); err == nil {
			t.Errorf("append %q %v should fail", bad.stream, bad.events)
		}
	}
}

func TestIdempotentAppend(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	opts := eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion, IdempotencyKey: "save-7"}
	first, err := eventstore.Append(ctx, db.Pool, "s", []eventstore.NewEvent{ev("A", nil), ev("B", nil)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	again, err := eventstore.Append(ctx, db.Pool, "s", []eventstore.NewEvent{ev("A", nil), ev("B", nil)}, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !again.Duplicate || again.FirstVersion != first.FirstVersion || again.LastVersion != first.LastVersion || fmt.Sprint(again.Positions) != fmt.Sprint(first.Positions) {
		t.Fatalf("retry = %+v, first = %+v", again, first)
	}
	// The same key under a stale expected version is still the same append, not a conflict.
	opts.ExpectedVersion = 0
	if again, err = eventstore.Append(ctx, db.Pool, "s", []eventstore.NewEvent{ev("A", nil)}, opts); err != nil || !again.Duplicate {
		t.Fatalf("retry with the old expected version: %+v %v", again, err)
	}

	// Concurrent retries of one append: exactly one writes.
	var wg sync.WaitGroup
	var writes atomic.Int32
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := eventstore.Append(ctx, db.Pool, "s2", []eventstore.NewEvent{ev("A", nil)}, eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion, IdempotencyKey: "k"})
			if err != nil {
				t.Error(err)
				return
			}
			if !r.Duplicate {
				writes.Add(1)
			}
		}()
	}
	wg.Wait()
	if v, _ := eventstore.StreamVersion(ctx, db.Pool, "s2"); writes.Load() != 1 || v != 1 {
		t.Fatalf("writes = %d, version = %d; want exactly one", writes.Load(), v)
	}
}

// TestRacingAppendersExactlyOneWins: many writers append at the same expected version each
// round; exactly one wins, the others get a conflict naming the new version, nothing is lost or
// duplicated.
func TestRacingAppendersExactlyOneWins(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	const writers, rounds = 8, 25
	version := int64(0)
	for round := range rounds {
		var wg sync.WaitGroup
		var wins atomic.Int32
		start := make(chan struct{})
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, err := eventstore.Append(ctx, db.Pool, "race", []eventstore.NewEvent{ev("Saved", map[string]int{"round": round, "writer": w})},
					eventstore.AppendOptions{ExpectedVersion: version})
				var ce *eventstore.ConflictError
				switch {
				case err == nil:
					wins.Add(1)
				case errors.As(err, &ce):
					if ce.CurrentVersion != version+1 {
						t.Errorf("round %d: conflict names version %d, want %d", round, ce.CurrentVersion, version+1)
					}
				default:
					t.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d winners", round, wins.Load())
		}
		version++
	}
	evs, err := eventstore.ReadStream(ctx, db.Pool, "race", 0, 1000)
	if err != nil || len(evs) != rounds {
		t.Fatalf("stream has %d events (%v), want %d", len(evs), err, rounds)
	}
}
