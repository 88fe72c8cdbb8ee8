package backup

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"
)

// ManifestSuffix is appended to an archive's path to name its manifest. A file beside the
// archive rather than inside it: the checksum cannot be part of what it sums, and a plain
// pg_dump archive stays usable by plain pg_restore.
const ManifestSuffix = ".manifest.json"

// manifestFormat is the version of the manifest's own layout.
const manifestFormat = 1

// Manifest describes an archive: what made it, from what, and what it must hold.
type Manifest struct {
	Format       int    `json:"format"`
	CairnVersion string `json:"cairn_version"`
	// CairnSchema and RiverSchema are the migration versions of cairn's and River's tables.
	CairnSchema int `json:"cairn_schema"`
	RiverSchema int `json:"river_schema,omitempty"`
	// Schema is the database schema the archive holds (the current schema of cairn's
	// connections, normally public).
	Schema   string `json:"schema"`
	Database string `json:"database"`
	// ServerVersion is the server's version string; ServerVersionNum its server_version_num.
	ServerVersion    string `json:"server_version"`
	ServerVersionNum int    `json:"server_version_num"`
	PgDumpVersion    string `json:"pg_dump_version"`
	// Vector is the version of the vector extension the archive recreates, "" without one, and
	// VectorSchema the schema it lives in.
	Vector       string `json:"vector_extension,omitempty"`
	VectorSchema string `json:"vector_schema,omitempty"`

	CreatedAt time.Time `json:"created_at"`
	// Archive is the archive's file name (without directory) when it was made.
	Archive string `json:"archive"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
	// Tables are the row counts of every table in the archive, taken in the snapshot it was
	// dumped from.
	Tables map[string]int64 `json:"tables"`
}

// Rows is the sum of the tables' row counts.
func (m *Manifest) Rows() int64 {
	var n int64
	for _, c := range m.Tables {
		n += c
	}
	return n
}

// ReadManifest reads the manifest of the archive at path (path + ManifestSuffix).
func ReadManifest(archive string) (*Manifest, error) {
	p := archive + ManifestSuffix
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("no manifest %s beside the archive: `cairn backup` writes one; it holds the checksum and row counts the archive is checked against", p)
	}
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", p, err)
	}
	if m.Format != manifestFormat {
		return nil, fmt.Errorf("manifest %s has format %d; this cairn reads format %d", p, m.Format, manifestFormat)
	}
	if m.SHA256 == "" || m.Schema == "" || m.Tables == nil {
		return nil, fmt.Errorf("manifest %s lacks the checksum, the schema or the table counts", p)
	}
	return &m, nil
}

// write stores the manifest at path, synced, so that a rename after it publishes a whole file.
func (m *Manifest) write(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("encode manifest: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("write manifest: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write manifest: %w", err)
	}
	return nil
}

// ChecksumError says an archive is not the file its manifest describes: changed, truncated or
// corrupted since it was made.
type ChecksumError struct {
	Archive    string
	Want, Got  string
	WantSize   int64
	ActualSize int64
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("archive %s is corrupted or was changed since the backup: its SHA-256 is %s (%d bytes), the manifest says %s (%d bytes)",
		e.Archive, e.Got, e.ActualSize, e.Want, e.WantSize)
}

// CheckChecksum compares the archive's SHA-256 with the manifest's.
func CheckChecksum(archive string, m *Manifest) error {
	sum, size, err := fileSHA256(archive)
	if err != nil {
		return err
	}
	if sum != m.SHA256 || size != m.Size {
		return &ChecksumError{Archive: archive, Want: m.SHA256, Got: sum, WantSize: m.Size, ActualSize: size}
	}
	return nil
}

func fileSHA256(path string) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("checksum: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	size, err = io.Copy(h, f)
	if err != nil {
		return "", 0, fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
