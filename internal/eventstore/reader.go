package eventstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Cursor is a position in the global, commit-safe order of events: (transaction id, position).
// The zero Cursor is the beginning.
//
// Positions are handed out before commit, so a writer that started earlier can commit an event
// with a smaller position after a reader has moved past it. The reader therefore only returns
// events of transactions older than every transaction still running (the snapshot's xmin) and
// orders them by (transaction id, position): every transaction that commits later has a larger
// transaction id than anything already returned, so nothing is ever skipped.
type Cursor struct {
	TxID     uint64
	Position int64
}

// String renders the cursor as "txid:position", the form ParseCursor reads.
func (c Cursor) String() string { return fmt.Sprintf("%d:%d", c.TxID, c.Position) }

// ParseCursor reads a cursor written by Cursor.String; "" is the beginning.
func ParseCursor(s string) (Cursor, error) {
	if s == "" {
		return Cursor{}, nil
	}
	a, b, ok := strings.Cut(s, ":")
	tx, err1 := strconv.ParseUint(a, 10, 64)
	pos, err2 := strconv.ParseInt(b, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return Cursor{}, fmt.Errorf("cursor %q: want txid:position as returned with the events", s)
	}
	return Cursor{TxID: tx, Position: pos}, nil
}

// ReadAll returns up to limit committed events after the cursor, in commit-safe order. An empty
// result means nothing new is safe to read yet (also while an older transaction is still open).
func ReadAll(ctx context.Context, q Querier, after Cursor, limit int) ([]Event, error) {
	rows, err := q.Query(ctx, `SELECT `+eventColumns+` FROM events
		WHERE (tx_id, position) > ($1::text::xid8, $2)
		  AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
		ORDER BY tx_id, position LIMIT $3`, strconv.FormatUint(after.TxID, 10), after.Position, limit)
	if err != nil {
		return nil, fmt.Errorf("read events after %s: %w", after, err)
	}
	evs, err := collect(rows)
	if err != nil {
		return nil, fmt.Errorf("read events after %s: %w", after, err)
	}
	return evs, nil
}

// Channel is the LISTEN/NOTIFY channel appends notify at commit.
const Channel = "cairn_events"

// FollowOptions tune Follow; zero values are the documented defaults.
type FollowOptions struct {
	// BatchSize is how many events one read fetches. Default 500.
	BatchSize int
	// Poll is how often to read even without a notification: a safety net for a notification
	// lost with a dropped connection, and for events held back behind an older open transaction.
	// Default 1s.
	Poll time.Duration
}

// Follow calls fn with every event after from, in commit-safe order, until ctx ends or fn
// returns an error. Between reads it waits for a notification from an append (on a connection of
// its own, held for as long as it follows) or the poll interval.
func Follow(ctx context.Context, pool *pgxpool.Pool, from Cursor, opts FollowOptions, fn func(Event) error) error {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 500
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	listener, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("follow events: acquire listener connection: %w", err)
	}
	defer func() {
		// The connection carries a LISTEN: never hand it back to the pool.
		listener.Conn().Close(context.WithoutCancel(ctx))
		listener.Release()
	}()
	if _, err := listener.Exec(ctx, "LISTEN "+Channel); err != nil {
		return fmt.Errorf("follow events: listen: %w", err)
	}
	cur := from
	// After a notification the event may not be readable yet: the watermark holds it back while
	// any older transaction on the server is still open (xids are server-wide). Re-read soon,
	// backing off, rather than sleeping a whole poll interval.
	const firstRetry = 5 * time.Millisecond
	retry := time.Duration(0)
	for {
		got := 0
		for {
			evs, err := ReadAll(ctx, pool, cur, opts.BatchSize)
			if err != nil {
				return err
			}
			for _, e := range evs {
				if err := fn(e); err != nil {
					return err
				}
				cur = e.Cursor()
			}
			got += len(evs)
			if len(evs) < opts.BatchSize {
				break
			}
		}
		wait := opts.Poll
		if got == 0 && retry > 0 {
			wait = min(retry, opts.Poll)
			retry *= 2
		} else {
			retry = 0
		}
		notified, err := waitNotification(ctx, listener.Conn(), wait)
		if err != nil {
			return err
		}
		if notified && retry == 0 {
			retry = firstRetry
		}
	}
}

// waitNotification waits up to d for a notification and reports whether one came.
func waitNotification(ctx context.Context, conn *pgx.Conn, d time.Duration) (bool, error) {
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err := conn.WaitForNotification(wctx)
	if err == nil {
		return true, nil
	}
	if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
		return false, nil
	}
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	return false, fmt.Errorf("follow events: wait for notification: %w", err)
}
