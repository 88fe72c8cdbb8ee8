package embed_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
)

// guardedOllama is an Ollama embedder for srv behind a Guard with short intervals.
func guardedOllama(t *testing.T, srv *embedtest.Server, timeout time.Duration) *embed.Guard {
	t.Helper()
	o, err := embed.NewOllama(embed.Options{Host: srv.URL, Timeout: timeout, LoadTimeout: 5 * timeout})
	if err != nil {
		t.Fatal(err)
	}
	g := embed.NewGuard(o, embed.GuardOptions{MinInterval: 20 * time.Millisecond, MaxInterval: 100 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(g.Close)
	return g
}

// While the server fails, no call but one probe at a time reaches it, at a growing interval; a
// search-like call is answered at once; when a probe succeeds every waiting worker resumes.
func TestGuardFailingServer(t *testing.T) {
	t.Parallel()
	srv := standIn(t)
	g := guardedOllama(t, srv, time.Second)
	ctx := context.Background()
	if _, err := g.Embed(ctx, embed.Document, []string{"warm"}); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1 << 30)
	if _, err := g.Embed(ctx, embed.Document, []string{"a"}); !embed.IsTransient(err) {
		t.Fatalf("first failure: %v", err)
	}
	srv.Reset()
	srv.ResetMaxInFlight()
	start := time.Now()
	for range 50 {
		if _, err := g.Embed(ctx, embed.Query, []string{"q"}); !embed.IsTransient(err) {
			t.Fatalf("while failing: %v", err)
		}
	}
	if d := time.Since(start); d > 500*time.Millisecond {
		t.Errorf("50 calls while failing took %s; they should be answered at once", d)
	}
	// Workers wait in Ready.
	var wg sync.WaitGroup
	resumed := make(chan time.Time, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := g.Ready(ctx); err != nil {
				t.Error(err)
			}
			resumed <- time.Now()
		}()
	}
	time.Sleep(time.Second)
	probes := srv.Calls()
	// 1 s of probing from 20 ms doubling to 100 ms is at most about 12 probes.
	if probes < 3 || probes > 14 {
		t.Errorf("%d calls reached the failing server in a second; want a few probes", probes)
	}
	if n := srv.MaxInFlight(); n > 1 {
		t.Errorf("%d calls in flight at once while failing; want one probe at a time", n)
	}
	srv.FailNext(0)
	recovered := time.Now()
	wg.Wait()
	close(resumed)
	for at := range resumed {
		if d := at.Sub(recovered); d > 500*time.Millisecond {
			t.Errorf("a worker resumed %s after the server recovered", d)
		}
	}
	if _, err := g.Embed(ctx, embed.Document, []string{"back"}); err != nil {
		t.Errorf("after recovery: %v", err)
	}
	if failing, _ := g.Failing(); failing {
		t.Error("still failing after recovery")
	}
}

// A server that hangs costs a call the batch timeout, not minutes, and probes do not pile up.
func TestGuardHangingServer(t *testing.T) {
	t.Parallel()
	srv := standIn(t)
	g := guardedOllama(t, srv, 200*time.Millisecond)
	ctx := context.Background()
	if _, err := g.Embed(ctx, embed.Document, []string{"warm"}); err != nil {
		t.Fatal(err)
	}
	srv.SetDelay(time.Hour)
	start := time.Now()
	_, err := g.Embed(ctx, embed.Document, []string{"a"})
	if !embed.IsTransient(err) || time.Since(start) > 2*time.Second {
		t.Fatalf("hung call: %v after %s", err, time.Since(start))
	}
	srv.ResetMaxInFlight()
	time.Sleep(time.Second)
	if n := srv.MaxInFlight(); n > 1 {
		t.Errorf("%d embed calls in flight at once while hanging", n)
	}
	srv.SetDelay(0)
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := g.Ready(rctx); err != nil {
		t.Fatalf("not ready after the hang ended: %v", err)
	}
}

// A model that must be loaded first gets the load timeout, once, and the batch after it the
// batch timeout: the first call after Ollama unloaded the model does not fail for being slow.
func TestOllamaLoadsAColdModelFirst(t *testing.T) {
	t.Parallel()
	srv := standIn(t)
	srv.Unload()
	srv.SetLoadDelay(400 * time.Millisecond)
	o, err := embed.NewOllama(embed.Options{Host: srv.URL, Timeout: 200 * time.Millisecond, LoadTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := o.Embed(context.Background(), embed.Document, []string{"a", "b"}); err != nil {
		t.Fatalf("first call on a cold model: %v", err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 || len(reqs[0].Input) != 1 || len(reqs[1].Input) != 2 {
		t.Errorf("requests %+v: want one load call, then the batch", reqs)
	}
	// Loaded now: a check makes one short call.
	srv.Reset()
	if err := o.Check(context.Background()); err != nil || srv.Calls() != 1 {
		t.Errorf("check: %v, %d calls", err, srv.Calls())
	}
}
