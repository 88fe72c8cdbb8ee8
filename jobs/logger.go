package jobs

import (
	"context"
	"log/slog"
)

// riverLogger is the logger River gets: log's handler, but only from level up (warn when level
// is nil), because River reports every start, stop and leadership change at info.
func riverLogger(log *slog.Logger, level slog.Leveler) *slog.Logger {
	if level == nil {
		level = slog.LevelWarn
	}
	return slog.New(minLevel{Handler: log.Handler(), min: level})
}

// minLevel drops records below min and passes the rest to the wrapped handler.
type minLevel struct {
	slog.Handler
	min slog.Leveler
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min.Level() && h.Handler.Enabled(ctx, l)
}

func (h minLevel) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min.Level() {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
