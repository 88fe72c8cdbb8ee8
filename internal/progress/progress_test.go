package progress

import (
	"bytes"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a hand-moved clock for deterministic output.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// step is one thing that happens to a bar: time passes, then an operation.
type step struct {
	after time.Duration
	op    func(*Bar)
}

func add(n int64) func(*Bar)      { return func(b *Bar) { b.Add(n) } }
func set(n int64) func(*Bar)      { return func(b *Bar) { b.Set(n) } }
func setTotal(n int64) func(*Bar) { return func(b *Bar) { b.SetTotal(n) } }
func done(b *Bar)                 { b.Done() }

func TestPlainLines(t *testing.T) {
	tests := []struct {
		name  string
		total int64
		unit  Unit
		steps []step
		want  []string
	}{
		{
			name: "bytes with a total", total: 8 << 10, unit: Bytes,
			steps: []step{{time.Second, add(1 << 10)}, {time.Second, add(1 << 10)}, {time.Second, add(1 << 10)}, {time.Second, add(5 << 10)}, {0, done}},
			want: []string{
				"dump: 2.0 KiB / 8.0 KiB (25%), 1.0 KiB/s, ETA 6s",
				"dump: 8.0 KiB / 8.0 KiB (100%), 2.0 KiB/s",
				"dump: 8.0 KiB / 8.0 KiB (100%), 2.0 KiB/s, in 4s",
			},
		},
		{
			name: "items without a total", total: 0, unit: Items,
			steps: []step{{3 * time.Second, add(30)}, {time.Second, add(10)}, {500 * time.Millisecond, add(5)}, {0, done}},
			want: []string{
				"dump: 30, 10.0/s",
				"dump: 45, 10.0/s, in 4.5s",
			},
		},
		{
			name: "set and a total learnt later", total: 0, unit: Items,
			steps: []step{{2 * time.Second, set(100)}, {0, setTotal(400)}, {2 * time.Second, set(200)}, {0, done}},
			want: []string{
				"dump: 100, 50.0/s",
				"dump: 200 / 400 (50%), 50.0/s, ETA 4s",
				"dump: 200 / 400 (50%), 50.0/s, in 4s",
			},
		},
		{
			name: "a quick task prints only the final line", total: 3 << 20, unit: Bytes,
			steps: []step{{100 * time.Millisecond, add(3 << 20)}, {0, done}},
			want:  []string{"dump: 3.0 MiB / 3.0 MiB (100%), 30.0 MiB/s, in 100ms"},
		},
		{
			name: "done twice writes one final line", total: 10, unit: Items,
			steps: []step{{20 * time.Second, add(10)}, {0, done}, {time.Second, done}, {time.Second, add(5)}},
			want: []string{
				"dump: 10 / 10 (100%), 0.5/s",
				"dump: 10 / 10 (100%), 0.5/s, in 20s",
			},
		},
		{
			name: "no time passed", total: 10, unit: Items,
			steps: []step{{0, add(4)}, {0, done}},
			want:  []string{"dump: 4 / 10 (40%)"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			c := newClock()
			b := newBar(&out, "dump", tc.total, tc.unit, false, 2*time.Second, c.now)
			for _, s := range tc.steps {
				c.advance(s.after)
				s.op(b)
			}
			got := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("output:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

func TestTerminalRedrawsInPlace(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := newBar(&out, "restore", 4<<20, Bytes, true, 2*time.Second, c.now)
	c.advance(time.Second)
	b.Add(1 << 20)
	c.advance(time.Second)
	b.Add(3 << 20)
	b.Done()
	got := out.String()
	if n := strings.Count(got, "\r"); n != 4 { // New, two Adds, Done
		t.Errorf("want 4 redraws, got %d: %q", n, got)
	}
	if strings.Count(got, "\n") != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("want exactly one newline, at the end: %q", got)
	}
	if !strings.Contains(got, "[======                  ] 1.0 MiB / 4.0 MiB (25%)") {
		t.Errorf("no quarter-full bar in %q", got)
	}
	last := got[strings.LastIndex(got, "\r"):]
	if want := "\rrestore: [========================] 4.0 MiB / 4.0 MiB (100%), 2.0 MiB/s, in 2s\x1b[K\n"; last != want {
		t.Errorf("final redraw %q, want %q", last, want)
	}
}

func TestConcurrentAdd(t *testing.T) {
	var out bytes.Buffer
	c := newClock()
	b := newBar(&out, "items", 0, Items, false, time.Nanosecond, c.now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				c.advance(time.Millisecond)
				b.Add(1)
			}
		})
	}
	wg.Wait()
	b.Done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "items: 8000, ") {
		t.Errorf("final line %q, want 8000 items", last)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, "items: ") {
			t.Fatalf("interleaved line %q", l)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	tests := []struct {
		n    float64
		want string
	}{
		{0, "0 B"},
		{1023, "1023 B"},
		{1024, "1.0 KiB"},
		{1536, "1.5 KiB"},
		{10 << 20, "10.0 MiB"},
		{5 << 30, "5.0 GiB"},
		{3 << 40, "3.0 TiB"},
	}
	for _, tc := range tests {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%v) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestNonFileWriterIsNotATerminal(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "x", 1, Items)
	b.Add(1)
	b.Done()
	if strings.Contains(out.String(), "\r") {
		t.Errorf("a bytes.Buffer got terminal redraws: %q", out.String())
	}
}

func TestGroup(t *testing.T) {
	var out bytes.Buffer
	g := NewGroup(&out, func(part string) string { return "embedding " + part }, Items)
	g.Set("entities", 1, 2)
	g.Set("entities", 2, 2)
	g.Done("entities")
	g.Done("episodes") // no bar yet: nothing to end
	g.Set("episodes", 0, 0)
	g.DoneAll()
	s := out.String()
	if !strings.Contains(s, "embedding entities") || !strings.Contains(s, "embedding episodes") {
		t.Errorf("want a bar per part, got\n%s", s)
	}
}
