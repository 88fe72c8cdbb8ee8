package mcp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Serve serves a pending server's transport — stdio when ln is nil, else HTTP on ln — while
// start makes what takes the database and calls Start: a client that spawns cairn has its
// initialize answered at once, its calls wait for the start, and a start that fails ends the
// serving with its error, which Serve returns. When Serve returns, start has returned too.
func (s *Server) Serve(ctx context.Context, ln net.Listener, start func(context.Context) error) error {
	ctx, fail := context.WithCancelCause(ctx)
	defer fail(nil)
	startCtx, stopStart := context.WithCancel(ctx)
	started := make(chan struct{})
	go func() {
		defer close(started)
		if err := start(startCtx); err != nil {
			fail(startError{err})
		}
	}()
	// Once the transport is done, the start is given up if it is still going.
	defer func() {
		stopStart()
		<-started
	}()

	if ln != nil {
		if err := s.ServeListener(ctx, ln); err != nil {
			return err
		}
		return startFailure(ctx)
	}
	err := s.ServeStdio(ctx)
	if ctx.Err() == nil {
		// The client went away (or there was none): a start still going has a few seconds to
		// say whether it failed, so that a wrong setting does not exit 0.
		select {
		case <-started:
		case <-time.After(5 * time.Second):
		}
	}
	if err := startFailure(ctx); err != nil {
		return err
	}
	if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("stdio transport: %w", err)
	}
	return nil
}

// startError is why a start failed, as the cause of Serve's context.
type startError struct{ error }

func (e startError) Unwrap() error { return e.error }

// startFailure is why ctx ended if the start failed, else nil.
func startFailure(ctx context.Context) error {
	var se startError
	if errors.As(context.Cause(ctx), &se) {
		return se.error
	}
	return nil
}
