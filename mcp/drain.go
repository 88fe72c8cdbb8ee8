package mcp

import (
	"context"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// listenMethod is 2026-07-28's subscriptions/listen, the stream resource updates travel on.
const listenMethod = "subscriptions/listen"

// inflight counts requests being handled, so that shutdown can wait for them before it closes
// long-lived sessions (an SSE stream would otherwise hold an HTTP shutdown open until timeout).
type inflight struct {
	mu   sync.Mutex
	n    int
	idle chan struct{} // closed while n == 0
}

func newInflight() *inflight {
	c := make(chan struct{})
	close(c)
	return &inflight{idle: c}
}

func (f *inflight) middleware(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		if method == listenMethod {
			// A listen request is a stream that lasts as long as its session: counted, it would
			// hold Drain until the deadline, and only Drain's closing the sessions ends it.
			return next(ctx, method, req)
		}
		f.mu.Lock()
		if f.n == 0 {
			f.idle = make(chan struct{})
		}
		f.n++
		f.mu.Unlock()
		defer func() {
			f.mu.Lock()
			f.n--
			if f.n == 0 {
				close(f.idle)
			}
			f.mu.Unlock()
		}()
		return next(ctx, method, req)
	}
}

func (f *inflight) wait(ctx context.Context) {
	f.mu.Lock()
	idle := f.idle
	f.mu.Unlock()
	select {
	case <-idle:
	case <-ctx.Done():
	}
}

// Drain waits (up to ctx) for requests in flight to finish, then closes every session, which
// ends SSE streams and stateful HTTP sessions so that an HTTP server can shut down.
func (s *Server) Drain(ctx context.Context) {
	s.calls.wait(ctx)
	// A response written just now still has to reach the client over its stream.
	time.Sleep(50 * time.Millisecond)
	for ss := range s.srv.Sessions() {
		ss.Close()
	}
}
