// Package client is cairn's MCP client side, shared by `cairn call` and `cairn ask`: sessions to
// a server built in-process, to a running cairn over Streamable HTTP or SSE, or to a `cairn
// serve` subprocess over stdio; and what the commands make of tools and results (listing,
// suggestions for an unknown name, output, arguments from the command line).
package client

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// Session is a client session to cairn and what has to be closed after it (an in-process
// server and its pool).
type Session struct {
	*sdk.ClientSession
	closers []func()
}

// Close ends the session, then closes what it ran on, in the reverse order of opening.
func (s *Session) Close() {
	for _, f := range slices.Backward(s.closers) {
		f()
	}
}

// newClient names cairn's CLI to the server.
func newClient(version string) *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "cairn-cli", Version: version}, nil)
}

// Remote connects to a running cairn at endpoint over Streamable HTTP, or SSE, sending the
// bearer token when there is one. A refused token gets an error that says what to fix rather
// than the SDK's message.
func Remote(ctx context.Context, endpoint string, sse bool, token, version string) (*Session, error) {
	rt := &bearerTransport{token: token, base: http.DefaultTransport}
	hc := &http.Client{Transport: rt}
	var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}
	if sse {
		tr = &sdk.SSEClientTransport{Endpoint: endpoint, HTTPClient: hc}
	}
	cs, err := newClient(version).Connect(ctx, tr, nil)
	if err == nil {
		return &Session{ClientSession: cs, closers: []func(){func() { _ = cs.Close() }}}, nil
	}
	switch st := int(rt.refused.Load()); {
	case st != 0 && token == "":
		return nil, fmt.Errorf("cairn at %s wants a token (HTTP %d %s): pass it with --auth-token or CAIRN_AUTH_TOKEN", endpoint, st, http.StatusText(st))
	case st != 0:
		return nil, fmt.Errorf("cairn at %s refused the token (HTTP %d %s): check --auth-token / CAIRN_AUTH_TOKEN", endpoint, st, http.StatusText(st))
	}
	return nil, fmt.Errorf("cannot connect to cairn at %s: %v", endpoint, err)
}

// Endpoint turns the URL of a running cairn into the endpoint to connect to: …/sse is SSE, …/mcp
// Streamable HTTP, and a base URL gets /mcp. A URL without a scheme is http.
func Endpoint(raw string) (endpoint string, sse bool, err error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("--url %q: want an http(s) URL like http://127.0.0.1:8080/mcp", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(u.Path, "/sse"):
		sse = true
	case strings.HasSuffix(u.Path, "/mcp"):
	default:
		u.Path += "/mcp"
	}
	return u.String(), sse, nil
}

// bearerTransport adds the bearer token to every request and remembers an authentication
// refusal, so that a failed connect can say what to fix rather than relay the SDK's message.
type bearerTransport struct {
	token   string
	base    http.RoundTripper
	refused atomic.Int32 // the last 401/403 status seen
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.base.RoundTrip(r)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		t.refused.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// SubprocessOptions start `cairn serve` for Subprocess.
type SubprocessOptions struct {
	// Exe is the cairn binary; default this process's own.
	Exe string
	// Args follow the binary, e.g. serve --transport stdio.
	Args []string
	// Env is the server's whole environment. Settings with secrets (a database URL with its
	// password) belong here rather than in Args, which any local user can read.
	Env []string
	// Stderr receives the server's logs; default os.Stderr.
	Stderr  io.Writer
	Version string
}

// Subprocess starts `cairn serve` over stdio, as an MCP client of its own would, and connects to
// it. Closing the session closes the server's stdin, waits 15 seconds for it to exit, then sends
// SIGTERM and at last SIGKILL.
func Subprocess(ctx context.Context, o SubprocessOptions) (*Session, error) {
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find the cairn binary to start `cairn serve`: %w", err)
		}
		o.Exe = exe
	}
	cmd := exec.Command(o.Exe, o.Args...)
	cmd.Env = o.Env
	cmd.Stderr = os.Stderr
	if o.Stderr != nil {
		cmd.Stderr = o.Stderr
	}
	cs, err := newClient(o.Version).Connect(ctx, &sdk.CommandTransport{Command: cmd, TerminateDuration: 15 * time.Second}, nil)
	if err != nil {
		return nil, fmt.Errorf("start `cairn serve` and connect to it: %v (its messages, if any, are above)", err)
	}
	return &Session{ClientSession: cs, closers: []func(){func() {
		if err := cs.Close(); err != nil {
			slog.Debug("cairn serve subprocess did not exit cleanly", "err", err)
		}
	}}}, nil
}
