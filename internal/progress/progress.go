// Package progress reports how far a long task has got: a bar redrawn in place on a terminal,
// plain lines at a modest pace when the output is a file or a pipe (logs, CI).
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

// Unit says how amounts are shown.
type Unit int

const (
	// Items shows amounts as plain counts.
	Items Unit = iota
	// Bytes shows amounts in B, KiB, MiB, GiB, TiB.
	Bytes
)

const (
	// defaultInterval is the least time between two plain lines: often enough to show life in a
	// log, seldom enough not to flood it.
	defaultInterval = 2 * time.Second
	// redrawInterval keeps a terminal bar from spending more time drawing than working when Add
	// is called in a tight loop.
	redrawInterval = 100 * time.Millisecond
	barWidth       = 24
)

// Bar reports the progress of one long task to w: a bar redrawn in place (with \r) when w is a
// terminal, plain lines (at most one every 2s, plus a final one) otherwise. Safe for concurrent
// Add.
type Bar struct {
	w     io.Writer
	label string
	unit  Unit
	tty   bool

	// interval and now are fixed at New; tests replace them to make plain output deterministic.
	interval time.Duration
	now      func() time.Time

	mu       sync.Mutex
	n, total int64
	start    time.Time
	drawn    time.Time // when the last line or redraw was written
	done     bool
}

// New starts a bar; total <= 0 means unknown (no percentage or ETA).
func New(w io.Writer, label string, total int64, unit Unit) *Bar {
	return newBar(w, label, total, unit, isTerminal(w), defaultInterval, time.Now)
}

func newBar(w io.Writer, label string, total int64, unit Unit, tty bool, interval time.Duration, now func() time.Time) *Bar {
	b := &Bar{w: w, label: label, unit: unit, tty: tty, interval: interval, now: now, total: total}
	b.start = now()
	b.drawn = b.start
	if tty {
		b.mu.Lock()
		b.draw(b.start, false)
		b.mu.Unlock()
	}
	return b
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Add moves the position forward by n.
func (b *Bar) Add(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n += n
	b.maybeDraw()
}

// Set moves the position to n.
func (b *Bar) Set(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.n = n
	b.maybeDraw()
}

// SetTotal changes the total, e.g. once it becomes known; n <= 0 makes it unknown.
func (b *Bar) SetTotal(n int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.total = n
	b.maybeDraw()
}

// Done writes the final line (on a terminal: the last redraw and a newline). Calls after the
// first do nothing, so it can be deferred and also called on the success path.
func (b *Bar) Done() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.done = true
	b.draw(b.now(), true)
}

// maybeDraw writes a line or redraw if enough time has passed since the last one. The caller
// holds mu.
func (b *Bar) maybeDraw() {
	if b.done {
		return
	}
	every := b.interval
	if b.tty {
		every = redrawInterval
	}
	now := b.now()
	if now.Sub(b.drawn) < every {
		return
	}
	b.draw(now, false)
}

// draw writes the current state; write errors are ignored, as progress must never fail the task
// it reports on. The caller holds mu.
func (b *Bar) draw(now time.Time, final bool) {
	b.drawn = now
	line := b.line(now, final)
	switch {
	case b.tty && final:
		fmt.Fprintf(b.w, "\r%s\x1b[K\n", line)
	case b.tty:
		fmt.Fprintf(b.w, "\r%s\x1b[K", line)
	default:
		fmt.Fprintln(b.w, line)
	}
}

// line renders e.g. "backup: 3.0 MiB / 12.0 MiB (25%), 1.5 MiB/s, ETA 6s"; on a terminal with a
// bar after the label, and when final with the elapsed time instead of the ETA.
func (b *Bar) line(now time.Time, final bool) string {
	var s strings.Builder
	s.WriteString(b.label)
	s.WriteString(": ")
	known := b.total > 0
	if b.tty && known {
		filled := int(min(b.n, b.total) * barWidth / b.total)
		s.WriteString("[" + strings.Repeat("=", filled) + strings.Repeat(" ", barWidth-filled) + "] ")
	}
	s.WriteString(b.amount(b.n))
	if known {
		fmt.Fprintf(&s, " / %s (%d%%)", b.amount(b.total), min(b.n, b.total)*100/b.total)
	}
	elapsed := now.Sub(b.start)
	if elapsed <= 0 {
		return s.String()
	}
	rate := float64(b.n) / elapsed.Seconds()
	fmt.Fprintf(&s, ", %s/s", b.amountf(rate))
	switch {
	case final:
		fmt.Fprintf(&s, ", in %s", round(elapsed))
	case known && rate > 0 && b.n < b.total:
		eta := time.Duration(float64(b.total-b.n) / rate * float64(time.Second))
		fmt.Fprintf(&s, ", ETA %s", round(eta))
	}
	return s.String()
}

func (b *Bar) amount(n int64) string {
	if b.unit == Bytes {
		return humanBytes(float64(n))
	}
	return fmt.Sprintf("%d", n)
}

func (b *Bar) amountf(x float64) string {
	if b.unit == Bytes {
		return humanBytes(x)
	}
	if x >= 100 {
		return fmt.Sprintf("%.0f", x)
	}
	return fmt.Sprintf("%.1f", x)
}

// humanBytes shows n in binary units with one decimal: 512 B, 1.5 KiB, 3.0 MiB.
func humanBytes(n float64) string {
	if n < 1024 {
		return fmt.Sprintf("%.0f B", n)
	}
	const units = "KMGTPE"
	i := -1
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %ciB", n, units[i])
}

// round keeps durations readable: whole seconds, or tenths under ten seconds.
func round(d time.Duration) time.Duration {
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
