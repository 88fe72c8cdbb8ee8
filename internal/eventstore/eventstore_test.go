package eventstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

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

// TestReaderNeverSkipsLateCommits: writers hold their transactions open for random times after
// appending, so positions commit out of order; a follower running meanwhile must still see
// every committed event exactly once (and none of a rolled-back transaction).
func TestReaderNeverSkipsLateCommits(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	var mu sync.Mutex
	seen := map[int64]int{}
	var last eventstore.Cursor
	followCtx, stopFollow := context.WithCancel(ctx)
	followed := make(chan error, 1)
	go func() {
		followed <- eventstore.Follow(followCtx, db.Pool, eventstore.Cursor{}, eventstore.FollowOptions{Poll: 20 * time.Millisecond, BatchSize: 7},
			func(e eventstore.Event) error {
				mu.Lock()
				defer mu.Unlock()
				c := e.Cursor()
				if c.TxID < last.TxID || (c.TxID == last.TxID && c.Position <= last.Position) {
					return fmt.Errorf("cursor went backwards: %v after %v", c, last)
				}
				last = c
				seen[e.Position]++
				return nil
			})
	}()

	const writers, perWriter = 6, 30
	committed := make(chan int64, writers*perWriter*2)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				err := pgx.BeginFunc(ctx, db.Pool, func(tx pgx.Tx) error {
					res, err := eventstore.Append(ctx, tx, fmt.Sprintf("w%d", w), []eventstore.NewEvent{ev("E", map[string]int{"i": i})},
						eventstore.AppendOptions{ExpectedVersion: eventstore.AnyVersion})
					if err != nil {
						return err
					}
					time.Sleep(time.Duration(rand.IntN(15)) * time.Millisecond) // commit late
					if i%10 == 9 {
						return errRollback // this one must never be seen
					}
					for _, p := range res.Positions {
						committed <- p
					}
					return nil
				})
				if err != nil && !errors.Is(err, errRollback) {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	close(committed)
	want := map[int64]bool{}
	for p := range committed {
		want[p] = true
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= len(want) || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopFollow()
	if err := <-followed; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("follow: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	for p := range want {
		if seen[p] != 1 {
			t.Errorf("event at position %d seen %d times", p, seen[p])
		}
	}
	for p := range seen {
		if !want[p] {
			t.Errorf("event at position %d was never committed but was read", p)
		}
	}
}

var errRollback = errors.New("roll back on purpose")

func TestFollowWakesOnNotify(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	got := make(chan time.Time, 1)
	go eventstore.Follow(ctx, db.Pool, eventstore.Cursor{}, eventstore.FollowOptions{Poll: time.Minute}, func(e eventstore.Event) error {
		got <- time.Now()
		return nil
	})
	// Wait until the follower listens (its connection's last statement is the LISTEN).
	for deadline := time.Now().Add(20 * time.Second); ; {
		var n int
		db.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query = 'LISTEN cairn_events'`).Scan(&n)
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the follower never started listening")
		}
		time.Sleep(10 * time.Millisecond)
	}
	sent := time.Now()
	if _, err := eventstore.Append(ctx, db.Pool, "n", []eventstore.NewEvent{ev("A", nil)}, eventstore.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Any transaction open elsewhere on the server holds the event back until it ends (the
	// watermark), so allow for a busy test server; the poll interval alone would take a minute.
	select {
	case at := <-got:
		if d := at.Sub(sent); d > 20*time.Second {
			t.Errorf("woke after %s", d)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("follower not woken by the append's notification (poll is a minute)")
	}
}

func TestCursorRoundTrip(t *testing.T) {
	for _, c := range []eventstore.Cursor{{}, {TxID: 42, Position: 7}} {
		got, err := eventstore.ParseCursor(c.String())
		if err != nil || got != c {
			t.Errorf("%v: %v %v", c, got, err)
		}
	}
	if c, err := eventstore.ParseCursor(""); err != nil || c != (eventstore.Cursor{}) {
		t.Errorf("empty: %v %v", c, err)
	}
	for _, bad := range []string{"x", "1", "1:x", "-1:2"} {
		if _, err := eventstore.ParseCursor(bad); err == nil {
			t.Errorf("%q should not parse", bad)
		}
	}
}
