package embed

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Checker is an embedder that can prove it works with one small call; the Ollama embedder is
// one. Guard probes it while it fails.
type Checker interface {
	Embedder
	// Check makes the smallest call that shows embedding works now.
	Check(ctx context.Context) error
}

// GuardOptions configure a Guard; zero values are the defaults.
type GuardOptions struct {
	// MinInterval is the first wait between probes once the embedder fails; it doubles up to
	// MaxInterval. Default 1 s.
	MinInterval time.Duration
	// MaxInterval caps the wait between probes (--embed-max-backoff); default 10 s.
	MaxInterval time.Duration
	// Logger receives the transitions (failing, recovered); default slog.Default().
	Logger *slog.Logger
}

// Guard keeps one view of an embedder's health for everything a process embeds with it. While
// the embedder works, calls pass through. When a call fails for a reason that may pass (the
// server down, hanging, answering 5xx), the Guard marks it failing: from then on calls are
// answered at once with a *TransientError and never reach the server, and one probe at a time
// (Checker.Check) tries it at a growing interval, capped by MaxInterval. When a probe succeeds,
// every caller waiting in Ready resumes at once.
type Guard struct {
	inner Checker
	opts  GuardOptions

	mu       sync.Mutex
	failing  bool
	lastErr  error
	next     time.Time     // when the next probe starts
	ready    chan struct{} // closed while healthy
	closed   bool
	stop     chan struct{}
	probeRun sync.WaitGroup
}

// Guarded returns e behind a Guard if it is a Checker, and e itself otherwise (the built-in
// embedder cannot fail that way).
func Guarded(e Embedder, opts GuardOptions) Embedder {
	c, ok := e.(Checker)
	if !ok {
		return e
	}
	return NewGuard(c, opts)
}

// NewGuard puts c behind a Guard, healthy until a call says otherwise.
func NewGuard(c Checker, opts GuardOptions) *Guard {
	if opts.MinInterval <= 0 {
		opts.MinInterval = time.Second
	}
	if opts.MaxInterval <= 0 {
		opts.MaxInterval = 10 * time.Second
	}
	opts.MinInterval = min(opts.MinInterval, opts.MaxInterval)
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	g := &Guard{inner: c, opts: opts, ready: make(chan struct{}), stop: make(chan struct{})}
	close(g.ready)
	return g
}

// Info is the guarded embedder's.
func (g *Guard) Info() Info { return g.inner.Info() }

// Unwrap returns the guarded embedder.
func (g *Guard) Unwrap() Embedder { return g.inner }

// Embed embeds through the guarded embedder while it is healthy. While it fails, Embed makes no
// call and returns a *TransientError saying why and when it is tried next.
func (g *Guard) Embed(ctx context.Context, kind Kind, texts []string) ([][]float32, error) {
	if err := g.unavailable(); err != nil {
		return nil, err
	}
	vecs, err := g.inner.Embed(ctx, kind, texts)
	if err != nil && IsTransient(err) && ctx.Err() == nil {
		g.fail(err)
	}
	return vecs, err
}

// Ready returns nil once the embedder is healthy, waiting while it fails, or a *TransientError
// when ctx ends first.
func (g *Guard) Ready(ctx context.Context) error {
	g.mu.Lock()
	ready := g.ready
	g.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		if err := g.unavailable(); err != nil {
			return err
		}
		return nil
	}
}

// Failing reports whether the embedder is failing and, if so, why.
func (g *Guard) Failing() (bool, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.failing, g.lastErr
}

// Close stops probing. Calls after Close are still answered.
func (g *Guard) Close() {
	g.mu.Lock()
	if !g.closed {
		g.closed = true
		close(g.stop)
	}
	g.mu.Unlock()
	g.probeRun.Wait()
}

// unavailable is the error of a call made while the embedder fails, nil while it is healthy.
func (g *Guard) unavailable() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !g.failing {
		return nil
	}
	wait := time.Until(g.next).Round(100 * time.Millisecond)
	return &TransientError{Reason: fmt.Sprintf("%s is failing, so no call is made until a probe succeeds (next in %s)", g.inner.Info(), max(wait, 0)), Err: g.lastErr}
}

// fail marks the embedder failing and starts the probes, unless already failing.
func (g *Guard) fail(err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.lastErr = err
	if g.failing || g.closed {
		return
	}
	g.failing = true
	g.ready = make(chan struct{})
	g.next = time.Now().Add(g.opts.MinInterval)
	g.opts.Logger.Warn("embedder failing: embed calls stop until a probe succeeds; nothing is lost, rows stay pending",
		"embedder", g.inner.Info().String(), "err", err)
	g.probeRun.Add(1)
	go g.probe()
}

// probe tries the embedder at a growing interval until it works (or the Guard is closed).
func (g *Guard) probe() {
	defer g.probeRun.Done()
	interval := g.opts.MinInterval
	start := time.Now()
	for n := 1; ; n++ {
		select {
		case <-time.After(interval):
		case <-g.stop:
			return
		}
		// The probe has its own timeouts (Check's); this one only stops it at Close.
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			select {
			case <-g.stop:
				cancel()
			case <-done:
			}
		}()
		err := g.inner.Check(ctx)
		close(done)
		cancel()
		interval = min(2*interval, g.opts.MaxInterval)
		g.mu.Lock()
		if err == nil {
			g.failing, g.lastErr = false, nil
			close(g.ready)
			g.mu.Unlock()
			g.opts.Logger.Info("embedder recovered: embedding resumes", "embedder", g.inner.Info().String(),
				"after", time.Since(start).Round(time.Millisecond), "probes", n)
			return
		}
		g.lastErr = err
		g.next = time.Now().Add(interval)
		g.mu.Unlock()
		if n == 1 || n%10 == 0 {
			g.opts.Logger.Warn("embedder still failing", "embedder", g.inner.Info().String(), "probes", n, "next_in", interval, "err", err)
		}
	}
}
