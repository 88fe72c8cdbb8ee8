package testbin

import (
	"bytes"
	"net"
	"net/http"
	"os/exec"
	"sync"
	"testing"
	"time"
)

// Logs collects what a subprocess (or several goroutines) write, and may be read meanwhile.
type Logs struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *Logs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *Logs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Len is how many bytes were written so far.
func (l *Logs) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Len()
}

// FreeAddr returns a loopback address with a port nothing listens on now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start starts bin with args, in CleanEnv with extra on top, its stderr into the returned Logs.
// The process is killed when the test ends, and its log shown if the test failed.
func Start(t testing.TB, bin string, extra []string, args ...string) (*exec.Cmd, *Logs) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(CleanEnv(), extra...)
	logs := &Logs{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("cairn %v (pid %d) stderr:\n%s", args, cmd.Process.Pid, logs)
		}
	})
	return cmd, logs
}

// ServeHTTP starts `bin serve --transport http` on a free loopback port with args (as Start does)
// and returns its base URL once /readyz answers 200, within a minute.
func ServeHTTP(t testing.TB, bin string, extra []string, args ...string) (string, *exec.Cmd, *Logs) {
	t.Helper()
	addr := FreeAddr(t)
	cmd, logs := Start(t, bin, extra, append([]string{"serve", "--transport", "http", "--addr", addr}, args...)...)
	base := "http://" + addr
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(base + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return base, cmd, logs
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("cairn did not become ready at %s\n%s", base, logs)
		}
	}
}
