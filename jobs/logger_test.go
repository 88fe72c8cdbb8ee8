package jobs

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRiverLogger(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		base     slog.Level   // the level of cairn's logger
		river    slog.Leveler // Options.RiverLogLevel
		logged   slog.Level
		wantSeen bool
	}{
		{name: "info dropped by default", base: slog.LevelInfo, logged: slog.LevelInfo},
		{name: "warn passed by default", base: slog.LevelInfo, logged: slog.LevelWarn, wantSeen: true},
		{name: "info passed when asked", base: slog.LevelInfo, river: slog.LevelInfo, logged: slog.LevelInfo, wantSeen: true},
		{name: "debug dropped by cairn's level", base: slog.LevelInfo, river: slog.LevelDebug, logged: slog.LevelDebug},
		{name: "warn dropped by cairn's level", base: slog.LevelError, logged: slog.LevelWarn},
	}
	for _, tc := range tests {
		var buf bytes.Buffer
		log := riverLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: tc.base})), tc.river)
		log.With("k", "v").WithGroup("g").Log(t.Context(), tc.logged, "River says")
		if seen := strings.Contains(buf.String(), "River says"); seen != tc.wantSeen {
			t.Errorf("%s: logged=%t, want %t (%q)", tc.name, seen, tc.wantSeen, buf.String())
		}
	}
}
