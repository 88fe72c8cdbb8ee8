package pgcluster

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// MissingBinariesError reports that no PostgreSQL server binaries were found, and says what to
// install.
type MissingBinariesError struct {
	// Looked lists where cairn looked, e.g. "$CAIRN_PG_BINDIR" or a directory.
	Looked []string
	// Missing names the binaries absent from an explicitly chosen directory; empty when cairn
	// searched and found no candidate at all.
	Missing []string
}

// Error says where cairn looked and what to install.
func (e *MissingBinariesError) Error() string {
	missing := ""
	if len(e.Missing) > 0 {
		missing = ": no " + strings.Join(e.Missing, ", ")
	}
	return fmt.Sprintf(`PostgreSQL server binaries not found (looked in %s%s); install them with "apt-get install postgresql" (Debian/Ubuntu) or set CAIRN_PG_BINDIR, or set DATABASE_URL to use an existing server`,
		strings.Join(e.Looked, ", "), missing)
}

// missingBinaries returns the server binaries dir lacks (not executable counts as missing); a
// client-only install has psql and pg_config but none of these.
func missingBinaries(dir string) []string {
	return missingFrom(dir, "initdb", "pg_ctl", "postgres")
}

// missingFrom returns the names dir has no executable file of.
func missingFrom(dir string, names ...string) []string {
	var missing []string
	for _, name := range names {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			missing = append(missing, name)
		}
	}
	return missing
}

// findBinDir picks the server binaries; see Options.BinDir for the order.
func findBinDir(explicit, dataDir string) (string, error) {
	if explicit != "" {
		return checkedBinDir(explicit, explicit)
	}
	if env := os.Getenv("CAIRN_PG_BINDIR"); env != "" {
		return checkedBinDir(env, "$CAIRN_PG_BINDIR ("+env+")")
	}
	// An existing cluster can only be run by its own major version, and installing a newer
	// PostgreSQL beside it must not make cairn pick binaries that refuse its data dir.
	if major := dataDirMajor(dataDir); major != "" {
		dir := filepath.Join("/usr/lib/postgresql", major, "bin")
		if len(missingBinaries(dir)) == 0 {
			return dir, nil
		}
	}
	if dir := pgConfigBinDir(); dir != "" && len(missingBinaries(dir)) == 0 {
		return dir, nil
	}
	if dir := newestDebianBinDir(); dir != "" {
		return dir, nil
	}
	if initdb, err := exec.LookPath("initdb"); err == nil {
		if dir := filepath.Dir(initdb); len(missingBinaries(dir)) == 0 {
			return filepath.Abs(dir)
		}
	}
	return "", &MissingBinariesError{Looked: []string{"$CAIRN_PG_BINDIR", "pg_config --bindir", "/usr/lib/postgresql/*/bin", "PATH"}}
}

func checkedBinDir(dir, described string) (string, error) {
	if missing := missingBinaries(dir); len(missing) > 0 {
		return "", &MissingBinariesError{Looked: []string{described}, Missing: missing}
	}
	return filepath.Abs(dir)
}

// dataDirMajor returns the major version that created the data dir, or "" when unknown.
func dataDirMajor(dataDir string) string {
	data, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION"))
	if err != nil {
		return ""
	}
	major := strings.TrimSpace(string(data))
	if _, err := strconv.ParseFloat(major, 64); err != nil {
		return ""
	}
	return major
}

func pgConfigBinDir() string {
	pgConfig, err := exec.LookPath("pg_config")
	if err != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, pgConfig, "--bindir")
	cmd.Stdout = &out // captured: stdout is the MCP protocol's
	if err := cmd.Run(); err != nil {
		return ""
	}
	return strings.TrimSpace(out.String())
}

// newestDebianBinDir returns the newest /usr/lib/postgresql/<version>/bin that has the server
// binaries.
func newestDebianBinDir() string {
	return NewestBinDir("initdb", "pg_ctl", "postgres")
}

// NewestBinDir returns the newest /usr/lib/postgresql/<version>/bin (Debian's layout) holding an
// executable of every one of names, or "" if none does; versions compare numerically, so 10
// beats 9.6. Client tools use it too: pg_dump and pg_restore live there, often not on PATH.
func NewestBinDir(names ...string) string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	var best string
	var bestVersion []int
	for _, dir := range dirs {
		v := parseVersion(filepath.Base(filepath.Dir(dir)))
		if v == nil || len(missingFrom(dir, names...)) > 0 {
			continue
		}
		if best == "" || slices.Compare(v, bestVersion) > 0 {
			best, bestVersion = dir, v
		}
	}
	return best
}

// parseVersion parses "15" or "9.6" into its numbers, or returns nil.
func parseVersion(s string) []int {
	var v []int
	for part := range strings.SplitSeq(s, ".") {
		n, err := strconv.Atoi(part)
		if err != nil || n < 0 {
			return nil
		}
		v = append(v, n)
	}
	return v
}
