// Package logging builds cairn's loggers: text or JSON on stderr (stdout belongs to the stdio
// transport), at a level, and filters that hold back chatter below a level.
package logging

import (
	"context"
	"fmt"
	"io"
	"log/slog"
)

// New builds the logger of --log-level (debug, info, warn or error) and --log-format (text or
// json), writing to w.
func New(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: use text or json", format)
}

// MinLevel passes on only the records at or above Min, whatever the handler it wraps would take:
// a one-shot command's start-up messages, or a library's per-session chatter, would bury what
// matters.
type MinLevel struct {
	slog.Handler
	Min slog.Level
}

// Enabled reports whether a record at l passes both Min and the wrapped handler.
func (h MinLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.Min && h.Handler.Enabled(ctx, l)
}
