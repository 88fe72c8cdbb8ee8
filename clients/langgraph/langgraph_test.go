package langgraph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

var cairnBin string

func TestMain(m *testing.M) { testbin.Main(m, &cairnBin) }

// The package's files the tests need, copied beside a link to the installed node_modules so
// that nothing is written into the repository.
var packageFiles = []string{"package.json", "tsconfig.json", "vitest.config.ts", "src", "test"}

var (
	installOnce sync.Once
	installDir  string
	installErr  error
)

// jsPackage returns a fresh copy of the package with node_modules linked in, installing the
// pinned packages (scripts/npm-cache.sh) once per test binary.
func jsPackage(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() {
		var out, errb bytes.Buffer
		cmd := exec.Command("../../scripts/npm-cache.sh", ".")
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			installErr = fmt.Errorf("install the npm packages: %v\n%s", err, errb.String())
			return
		}
		installDir = strings.TrimSpace(out.String())
	})
	if installErr != nil {
		t.Fatal(installErr)
	}
	dir := t.TempDir()
	for _, f := range packageFiles {
		if out, err := exec.Command("cp", "-R", f, filepath.Join(dir, f)).CombinedOutput(); err != nil {
			t.Fatalf("copy %s: %v\n%s", f, err, out)
		}
	}
	if err := os.Symlink(filepath.Join(installDir, "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// serve starts `cairn serve --transport http` on the test database and a free loopback port and
// returns its MCP endpoint once /readyz answers.
func serve(t *testing.T, db *testdb.DB, args ...string) string {
	t.Helper()
	base, _, _ := testbin.ServeHTTP(t, cairnBin, []string{"CAIRN_LOG_LEVEL=warn"}, append([]string{"--database-url", db.URL}, args...)...)
	return base + "/mcp"
}

// vitestReport is the part of vitest's JSON report the tests read.
type vitestReport struct {
	NumTotalTests   int  `json:"numTotalTests"`
	NumPassedTests  int  `json:"numPassedTests"`
	NumFailedTests  int  `json:"numFailedTests"`
	NumPendingTests int  `json:"numPendingTests"`
	NumTodoTests    int  `json:"numTodoTests"`
	Success         bool `json:"success"`
	TestResults     []struct {
		Name             string `json:"name"`
		AssertionResults []struct {
			FullName        string   `json:"fullName"`
			Status          string   `json:"status"`
			FailureMessages []string `json:"failureMessages"`
		} `json:"assertionResults"`
	} `json:"testResults"`
}

// vitest runs test files of the package copy in dir with env added, and returns the report;
// a failed run fails the test with vitest's output.
func vitest(t *testing.T, dir string, env []string, files ...string) vitestReport {
	t.Helper()
	report := filepath.Join(dir, fmt.Sprintf("report-%d.json", time.Now().UnixNano()))
	args := append([]string{"node_modules/vitest/vitest.mjs", "run", "--reporter=default", "--reporter=json", "--outputFile.json=" + report}, files...)
	cmd := exec.Command("node", args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "CI=true", "NO_COLOR=1"), env...)
	out, err := cmd.CombinedOutput()
	var r vitestReport
	b, rerr := os.ReadFile(report)
	if rerr == nil {
		rerr = json.Unmarshal(b, &r)
	}
	if err != nil || rerr != nil || !r.Success {
		var failed []string
		for _, f := range r.TestResults {
			for _, a := range f.AssertionResults {
				if a.Status == "failed" {
					failed = append(failed, a.FullName+"\n    "+strings.Join(a.FailureMessages, "\n    "))
				}
			}
		}
		t.Fatalf("vitest %v: %v (report: %v)\nfailed tests:\n%s\noutput:\n%s", files, err, rerr, strings.Join(failed, "\n"), tail(string(out), 12000))
	}
	return r
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// TestTypes: the saver compiles against the BaseCheckpointSaver of the pinned packages.
func TestTypes(t *testing.T) {
	t.Parallel()
	dir := jsPackage(t)
	out, err := exec.Command("node", filepath.Join(dir, "node_modules/typescript/bin/tsc"), "-p", filepath.Join(dir, "tsconfig.json"), "--noEmit").CombinedOutput()
	if err != nil {
		t.Fatalf("tsc: %v\n%s", err, out)
	}
}

// TestValidationSuite runs LangGraph's checkpointer validation suite against CairnSaver on a
// live cairn, behind a bearer token as a deployed cairn would be: every test must pass, none may
// be skipped.
func TestValidationSuite(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	const token = "validation-token"
	url := serve(t, db, "--auth-token", token)
	r := vitest(t, jsPackage(t), []string{"CAIRN_URL=" + url, "CAIRN_TOKEN=" + token}, "test/validation.test.ts")
	t.Logf("LangGraph checkpointer validation: %d passed, %d failed, %d skipped, %d todo of %d",
		r.NumPassedTests, r.NumFailedTests, r.NumPendingTests, r.NumTodoTests, r.NumTotalTests)
	if r.NumPassedTests != r.NumTotalTests || r.NumTotalTests < 700 {
		t.Errorf("%d of %d tests passed (%d skipped): the suite must pass in full", r.NumPassedTests, r.NumTotalTests, r.NumPendingTests)
	}
}

// connect opens a go-sdk client on cairn's MCP endpoint: what a user checking on the threads
// would use.
func connect(t *testing.T, url string) *sdk.ClientSession {
	t.Helper()
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "langgraph-test", Version: "1"}, nil).
		Connect(context.Background(), &sdk.StreamableClientTransport{Endpoint: url}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs
}

func call(t *testing.T, cs *sdk.ClientSession, tool string, args map[string]any) map[string]any {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	text := res.Content[0].(*sdk.TextContent).Text
	if res.IsError {
		t.Fatalf("%s: tool error: %s", tool, text)
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(text), &out); err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// TestInterruptResumeFork: a LangGraph graph checkpointed in cairn runs until interrupt(); the
// interrupted thread is in workflow_list's inbox; another process resumes it with a Command;
// a third forks it from an earlier checkpoint. Each step is a process of its own.
func TestInterruptResumeFork(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	url := serve(t, db)
	dir := jsPackage(t)
	cs := connect(t, url)
	const thread = "e2e-approval"
	env := []string{"CAIRN_URL=" + url, "THREAD_ID=" + thread}

	vitest(t, dir, env, "test/e2e/1-interrupt.test.ts")
	inbox := call(t, cs, "workflow_list", map[string]any{"status": "interrupted"})
	ws := inbox["workflows"].([]any)
	if len(ws) != 1 || ws[0].(map[string]any)["id"] != thread {
		t.Fatalf("workflow_list status=interrupted = %v, want the thread %s", inbox, thread)
	}
	intr := ws[0].(map[string]any)["interrupt"].(map[string]any)
	if !strings.Contains(fmt.Sprint(intr["payload"]), "Deploy nginx to production?") {
		t.Errorf("the interrupt's payload = %v", intr)
	}

	vitest(t, dir, env, "test/e2e/2-resume.test.ts")
	w := call(t, cs, "workflow_get", map[string]any{"workflow_id": thread})
	if w["status"] != "running" {
		t.Errorf("after the resume the workflow is %v", w["status"])
	}
	hist := call(t, cs, "workflow_history", map[string]any{"workflow_id": thread, "limit": 1000})
	var types []string
	for _, e := range hist["events"].([]any) {
		types = append(types, e.(map[string]any)["type"].(string))
	}
	if h := strings.Join(types, " "); !strings.Contains(h, "WorkflowInterrupted") || !strings.Contains(h, "WorkflowResumed") {
		t.Errorf("history = %s", h)
	}

	vitest(t, dir, env, "test/e2e/3-fork.test.ts")
}
