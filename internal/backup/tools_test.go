package backup

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in        string
		want      Version
		major     Version
		majorText string
	}{
		{"15.20 (Debian 15.20-0+deb12u1)", 150020, 150000, "15"},
		{"16.4", 160004, 160000, "16"},
		{"17beta1", 170000, 170000, "17"},
		{"18devel", 180000, 180000, "18"},
		{"9.6.24", 90624, 90600, "9.6"},
		{"10.23 (Ubuntu 10.23-1)", 100023, 100000, "10"},
	}
	for _, tc := range tests {
		v, err := ParseVersion(tc.in)
		if err != nil || v != tc.want || v.Major() != tc.major || v.MajorString() != tc.majorText {
			t.Errorf("ParseVersion(%q) = %d (major %d %q), %v; want %d (%d %q)", tc.in, v, v.Major(), v.MajorString(), err, tc.want, tc.major, tc.majorText)
		}
	}
	for _, bad := range []string{"", "pg_dump", "x15"} {
		if v, err := ParseVersion(bad); err == nil && v != 0 {
			t.Errorf("ParseVersion(%q) = %d, want an error or zero", bad, v)
		}
	}
}

// fakeTool writes an executable script named name into dir that prints version like the real
// program does.
func fakeTool(t *testing.T, dir, name, output string, mode os.FileMode) {
	t.Helper()
	script := "#!/bin/sh\necho '" + output + "'\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), mode); err != nil {
		t.Fatal(err)
	}
}

func TestFindToolInBinDir(t *testing.T) {
	need15 := Need{Version: 150000, Why: "the server's, 15"}
	tests := []struct {
		name    string
		output  string // what the fake pg_dump prints; "" for no pg_dump at all
		mode    os.FileMode
		want    Version
		wantErr any // pointer to the error type expected, or nil
		errText []string
	}{
		{name: "new enough", output: "pg_dump (PostgreSQL) 16.2 (Debian 16.2-1)", mode: 0o755, want: 160002},
		{name: "same major, older minor", output: "pg_dump (PostgreSQL) 15.1", mode: 0o755, want: 150001},
		{name: "too old", output: "pg_dump (PostgreSQL) 13.9", mode: 0o755, wantErr: new(*ToolTooOldError),
			errText: []string{"pg_dump 13", "too old", "the server's, 15", "postgresql-client-15"}},
		{name: "missing", wantErr: new(*ToolNotFoundError),
			errText: []string{"pg_dump not found", "--pg-bindir", "postgresql-client-15 or newer", "CAIRN_PG_BINDIR"}},
		{name: "not executable", output: "pg_dump (PostgreSQL) 16.2", mode: 0o644, wantErr: new(*ToolNotFoundError)},
		{name: "not PostgreSQL's", output: "pg_dump from elsewhere 1.0", mode: 0o755, errText: []string{"not a PostgreSQL version"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.output != "" {
				fakeTool(t, dir, "pg_dump", tc.output, tc.mode)
			}
			tool, err := FindTool(context.Background(), "pg_dump", dir, need15)
			if tc.wantErr == nil && tc.errText == nil {
				if err != nil || tool.Version != tc.want || tool.Path != filepath.Join(dir, "pg_dump") {
					t.Fatalf("FindTool = %+v, %v; want version %d in %s", tool, err, tc.want, dir)
				}
				return
			}
			if err == nil {
				t.Fatalf("FindTool = %+v, want an error", tool)
			}
			if tc.wantErr != nil && !errors.As(err, tc.wantErr) {
				t.Errorf("error %T (%v), want %T", err, err, tc.wantErr)
			}
			for _, s := range tc.errText {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error %q lacks %q", err, s)
				}
			}
		})
	}
}

func TestFindToolPrefersPath(t *testing.T) {
	dir := t.TempDir()
	fakeTool(t, dir, "pg_restore", "pg_restore (PostgreSQL) 99.1", 0o755)
	t.Setenv("PATH", dir)
	tool, err := FindTool(context.Background(), "pg_restore", "", Need{Version: 150000})
	if err != nil || tool.Path != filepath.Join(dir, "pg_restore") || tool.Version != 990001 {
		t.Fatalf("FindTool = %+v, %v; want the one on PATH", tool, err)
	}
}
