package main

import (
	"bytes"
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/testbin"
)

// cairnBin is the cairn binary the CLI tests run, built once in TestMain.
var cairnBin string

func TestMain(m *testing.M) { testbin.Main(m, &cairnBin) }

// cliResult is what one run of the binary did.
type cliResult struct {
	Stdout, Stderr string
	Code           int
}

// runCLI runs the cairn binary with args and the environment extra (KEY=value) on top of one
// without the test cluster's PG*, DATABASE_URL and CAIRN_ variables, so that only what the test
// passes decides where cairn connects. It fails the test if the binary cannot be run or takes
// longer than two minutes.
func runCLI(t *testing.T, extra []string, args ...string) cliResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, cairnBin, args...)
	cmd.Env = append(cleanEnv(), extra...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := cliResult{Stdout: out.String(), Stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	default:
		t.Fatalf("run cairn %s: %v\nstderr:\n%s", strings.Join(args, " "), err, r.Stderr)
	}
	if ctx.Err() != nil {
		t.Fatalf("cairn %s did not finish within two minutes\nstderr:\n%s", strings.Join(args, " "), r.Stderr)
	}
	return r
}

// cleanEnv is testbin.CleanEnv: only what a test passes decides where cairn connects.
func cleanEnv() []string { return testbin.CleanEnv() }

func TestVersionRuns(t *testing.T) {
	r := runCLI(t, nil, "version")
	if r.Code != 0 || !strings.Contains(r.Stdout, "cairn") {
		t.Fatalf("cairn version: %+v", r)
	}
}

func TestCompletion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"completion", "bash"}, 0, "complete -o bashdefault -o default -o nospace -F _cli_bash_autocomplete $PROG"},
		{[]string{"completion", "zsh"}, 0, "compdef _cli_zsh_autocomplete cairn"},
		{[]string{"completion", "fish"}, 2, ""},
		{[]string{"--generate-bash-completion"}, 0, "reindex"},
	} {
		r := runCLI(t, nil, tc.args...)
		if r.Code != tc.code || !strings.Contains(r.Stdout, tc.want) {
			t.Errorf("cairn %v: exit %d, stdout %.200q", tc.args, r.Code, r.Stdout)
		}
	}
}
