package backup

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/internal/pgcluster"
)

// Version is a PostgreSQL version as server_version_num spells it: 150020 for 15.20, 90624 for
// 9.6.24.
type Version int

// ParseVersion reads the number at the start of a version string: "15.20 (Debian 15.20-1)",
// "9.6.24", "17beta1", "16devel".
func ParseVersion(s string) (Version, error) {
	s = strings.TrimSpace(s)
	end := 0
	for end < len(s) && (s[end] == '.' || s[end] >= '0' && s[end] <= '9') {
		end++
	}
	parts := strings.Split(strings.Trim(s[:end], "."), ".")
	var n [3]int
	for i := 0; i < len(parts) && i < 3; i++ {
		v, err := strconv.Atoi(parts[i])
		if err != nil {
			return 0, fmt.Errorf("not a PostgreSQL version: %q", s)
		}
		n[i] = v
	}
	if n[0] >= 10 { // 15.20: major.minor
		return Version(n[0]*10000 + n[1]), nil
	}
	return Version(n[0]*10000 + n[1]*100 + n[2]), nil // 9.6.24: the major is two numbers
}

// Major drops the minor release: 150020 becomes 150000, 90624 becomes 90600.
func (v Version) Major() Version {
	if v >= 100000 {
		return v / 10000 * 10000
	}
	return v / 100 * 100
}

// MajorString is the major version as packages name it: "15", "9.6".
func (v Version) MajorString() string {
	if v >= 100000 {
		return strconv.Itoa(int(v / 10000))
	}
	return fmt.Sprintf("%d.%d", v/10000, v/100%100)
}

// Tool is a PostgreSQL client program found on this machine.
type Tool struct {
	Name    string  // pg_dump or pg_restore
	Path    string  // absolute, or as found on PATH
	Version Version // from --version
	Release string  // --version's text after "(PostgreSQL)", e.g. "15.20 (Debian 15.20-0+deb12u1)"
}

// Need is the oldest major version of a client program that will do, and why.
type Need struct {
	Version Version
	// Why completes "its major version must be at least ...", e.g. "the server's, 15".
	Why string
}

// ToolNotFoundError says a client program is missing and what to install.
type ToolNotFoundError struct {
	Tool   string
	Looked []string
	Need   Need
}

func (e *ToolNotFoundError) Error() string {
	return fmt.Sprintf("%s not found (looked in %s): install postgresql-client-%s or newer (its major version must be at least %s) or set --pg-bindir / CAIRN_PG_BINDIR",
		e.Tool, strings.Join(e.Looked, ", "), e.Need.Version.MajorString(), e.Need.Why)
}

// ToolTooOldError says the client program found is older than the task needs.
type ToolTooOldError struct {
	Tool Tool
	Need Need
}

func (e *ToolTooOldError) Error() string {
	return fmt.Sprintf("%s %s (%s) is too old: its major version must be at least %s; install postgresql-client-%s or newer and point --pg-bindir / CAIRN_PG_BINDIR at its bin directory",
		e.Tool.Name, e.Tool.Version.MajorString(), e.Tool.Path, e.Need.Why, e.Need.Version.MajorString())
}

// FindTool finds the client program name of at least need's major version. With binDir
// (--pg-bindir / CAIRN_PG_BINDIR) only that directory counts: an explicit choice that does not
// work should fail, not be replaced behind the user's back. Without it, the program on PATH and
// then the one in the newest /usr/lib/postgresql/*/bin (Debian installs client programs there,
// often off PATH) are tried, and the first that is new enough wins.
func FindTool(ctx context.Context, name, binDir string, need Need) (Tool, error) {
	var candidates, looked []string
	if binDir != "" {
		looked = append(looked, binDir+" (--pg-bindir / CAIRN_PG_BINDIR)")
		if p := filepath.Join(binDir, name); isExecutable(p) {
			candidates = append(candidates, p)
		}
	} else {
		looked = append(looked, "PATH", "/usr/lib/postgresql/*/bin")
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
		if dir := pgcluster.NewestBinDir(name); dir != "" {
			candidates = append(candidates, filepath.Join(dir, name))
		}
	}
	var tooOld *ToolTooOldError
	var runErr error
	for _, p := range candidates {
		t, err := toolVersion(ctx, name, p)
		if err != nil {
			runErr = err
			continue
		}
		if t.Version.Major() >= need.Version.Major() {
			return t, nil
		}
		if tooOld == nil || t.Version > tooOld.Tool.Version {
			tooOld = &ToolTooOldError{Tool: t, Need: need}
		}
	}
	switch {
	case tooOld != nil:
		return Tool{}, tooOld
	case runErr != nil:
		return Tool{}, runErr
	}
	return Tool{}, &ToolNotFoundError{Tool: name, Looked: looked, Need: need}
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && !fi.IsDir() && fi.Mode().Perm()&0o111 != 0
}

// toolVersion runs "path --version", which prints e.g. "pg_dump (PostgreSQL) 15.20 (Debian ...)".
func toolVersion(ctx context.Context, name, path string) (Tool, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return Tool{}, fmt.Errorf("run %s --version: %v: %s", path, err, strings.TrimSpace(errOut.String()))
	}
	text := strings.TrimSpace(out.String())
	_, release, ok := strings.Cut(text, "(PostgreSQL) ")
	if !ok {
		return Tool{}, fmt.Errorf("%s --version printed %q, not a PostgreSQL version", path, text)
	}
	v, err := ParseVersion(release)
	if err != nil {
		return Tool{}, fmt.Errorf("%s --version: %w", path, err)
	}
	return Tool{Name: name, Path: path, Version: v, Release: release}, nil
}

// runTool runs a client program with the connection's password in its environment and returns
// its stderr in the error when it fails.
func runTool(ctx context.Context, t Tool, conn Conn, args ...string) error {
	cmd := exec.CommandContext(ctx, t.Path, args...)
	cmd.Env = conn.env()
	var errOut bytes.Buffer
	cmd.Stderr = &errOut
	// stdout stays nil (/dev/null): cairn's stdout may be an MCP client's protocol stream.
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", t.Name, ctx.Err())
		}
		return &ToolError{Tool: t.Name, Status: err.Error(), Stderr: strings.TrimSpace(errOut.String())}
	}
	return nil
}

// ToolError is a client program that failed, with what it said. It keeps the process error as
// text, not wrapped: *exec.ExitError has an ExitCode method, and urfave/cli would take it for
// the exit code of cairn itself.
type ToolError struct {
	Tool   string
	Status string // e.g. "exit status 1", "signal: segmentation fault"
	Stderr string
}

func (e *ToolError) Error() string {
	if e.Stderr == "" {
		return fmt.Sprintf("%s failed (%s)", e.Tool, e.Status)
	}
	return fmt.Sprintf("%s failed (%s): %s", e.Tool, e.Status, e.Stderr)
}
