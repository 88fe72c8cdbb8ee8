package backup

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestManifestRoundTripAndChecksum(t *testing.T) {
	dir := t.TempDir()
	archive := filepath.Join(dir, "a.dump")
	if err := os.WriteFile(archive, []byte("PGDMP archive bytes"), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, size, err := fileSHA256(archive)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{Format: manifestFormat, Schema: "public", SHA256: sum, Size: size, CreatedAt: time.Now().UTC().Truncate(time.Second),
		Tables: map[string]int64{"workflows": 3, "agents": 2}}
	if err := m.write(archive + ManifestSuffix); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(archive)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256 != sum || got.Rows() != 5 || !got.CreatedAt.Equal(m.CreatedAt) {
		t.Errorf("read back %+v", got)
	}
	if err := CheckChecksum(archive, got); err != nil {
		t.Errorf("intact archive: %v", err)
	}

	tests := []struct {
		name   string
		change func() error
	}{
		{"a byte changed", func() error { return os.WriteFile(archive, []byte("PGDMP archive bytez"), 0o600) }},
		{"truncated", func() error { return os.Truncate(archive, 5) }},
		{"appended to", func() error { return os.WriteFile(archive, []byte("PGDMP archive bytes and more"), 0o600) }},
	}
	for _, tc := range tests {
		if err := tc.change(); err != nil {
			t.Fatal(err)
		}
		var ce *ChecksumError
		if err := CheckChecksum(archive, got); !errors.As(err, &ce) || !strings.Contains(err.Error(), "corrupted") {
			t.Errorf("%s: %v, want a *ChecksumError", tc.name, err)
		}
	}
}

func TestReadManifestErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content, want string
	}{
		{"missing", "", "no manifest"},
		{"not JSON", "{", "manifest"},
		{"other format", `{"format": 2, "sha256": "x", "schema": "public", "tables": {}}`, "format 2"},
		{"incomplete", `{"format": 1, "schema": "public"}`, "lacks"},
	}
	for _, tc := range tests {
		archive := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".dump")
		if tc.content != "" {
			if err := os.WriteFile(archive+ManifestSuffix, []byte(tc.content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := ReadManifest(archive); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error with %q", tc.name, err, tc.want)
		}
	}
}
