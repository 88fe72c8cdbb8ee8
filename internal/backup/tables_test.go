package backup

import (
	"errors"
	"strings"
	"testing"
)

func TestCompareCounts(t *testing.T) {
	want := map[string]int64{"agents": 2, "workflows": 3}
	tests := []struct {
		name  string
		got   map[string]int64
		diffs []string
	}{
		{"equal", map[string]int64{"agents": 2, "workflows": 3}, nil},
		{"fewer rows", map[string]int64{"agents": 1, "workflows": 3}, []string{"agents: 1 rows, the manifest says 2"}},
		{"missing table", map[string]int64{"workflows": 3}, []string{"agents: missing"}},
		{"extra table", map[string]int64{"agents": 2, "workflows": 3, "notes": 0}, []string{"notes: not in the manifest"}},
	}
	for _, tc := range tests {
		err := compareCounts(want, tc.got)
		var me *CountMismatchError
		switch {
		case tc.diffs == nil && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.diffs != nil && (!errors.As(err, &me) || strings.Join(me.Diffs, "|") != strings.Join(tc.diffs, "|")):
			t.Errorf("%s: %v, want diffs %v", tc.name, err, tc.diffs)
		}
	}
}
