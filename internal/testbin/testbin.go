// Package testbin builds the cairn binary for tests that run it as a subprocess, and gives them
// an environment in which only the flags they pass decide where it connects.
package testbin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Main builds cairn into a temporary directory, sets *bin to its path, runs the tests and exits
// with their code: the body of a package's TestMain.
func Main(m *testing.M, bin *string) {
	dir, err := os.MkdirTemp("", "cairn-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	*bin = filepath.Join(dir, "cairn")
	build := exec.Command("go", "build", "-o", *bin, "github.com/cairn-mcp/cairn/cmd/cairn")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build cairn:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// CleanEnv is the environment without the test cluster's PG* and DATABASE_URL variables, cairn's
// own CAIRN_* settings and Ollama's OLLAMA_*, so that a subprocess connects where its flags say.
func CleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "DATABASE_URL=") || strings.HasPrefix(kv, "CAIRN_") || strings.HasPrefix(kv, "OLLAMA_") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
