package sqlexec

import (
	"testing"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// A verdict found by shape carries the statement's own text, and an error is never lent to a
// statement that would pass.
func TestCheckCache(t *testing.T) {
	c := newCheckCache(8)
	for _, step := range []struct {
		sql      string
		write    bool
		wantText string
		wantErr  bool
	}{
		{"SELECT * FROM t WHERE id = 1", false, "SELECT * FROM t WHERE id = 1", false},
		{"SELECT * FROM t WHERE id = 2;", false, "SELECT * FROM t WHERE id = 2", false},
		{"DELETE FROM t WHERE id = 1", false, "", true},
		{"DELETE FROM t WHERE id = 2", false, "", true},
		{"DELETE FROM t WHERE id = 3", true, "DELETE FROM t WHERE id = 3", false},
		{"SELECT * FROM t WHERE id = 'x'", false, "SELECT * FROM t WHERE id = 'x'", false},
	} {
		for range 2 { // the second time from the cache
			st, err := c.check(step.sql, step.write)
			if (err != nil) != step.wantErr {
				t.Fatalf("%q (write %v): error %v, want error %v", step.sql, step.write, err, step.wantErr)
			}
			if err == nil && st.Text != step.wantText {
				t.Fatalf("%q: text %q, want %q", step.sql, st.Text, step.wantText)
			}
			want, wantErr := sqlguard.CheckQuery(step.sql)
			if step.write {
				want, wantErr = sqlguard.CheckExecute(step.sql)
			}
			if err == nil && wantErr == nil && (st.Command != want.Command || st.ReadOnly != want.ReadOnly) {
				t.Fatalf("%q: cached %+v, checked %+v", step.sql, st, want)
			}
		}
	}
	if len(c.shapes) == 0 {
		t.Fatal("no verdict was kept by shape")
	}
}
