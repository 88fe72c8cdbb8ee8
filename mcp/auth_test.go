package mcp_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/auth/authtest"
	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/mcp"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// testAudience is the aud the test issuer puts in the tokens it makes for cairn.
const testAudience = "cairn-test"

// authServer serves an in-process cairn over HTTP with the verifier o describes, and a whoami
// tool that answers with the caller's identity as tools see it.
func authServer(t *testing.T, o auth.Options) *httptest.Server {
	t.Helper()
	db := testdb.New(t)
	cfg := &config.Config{Transport: config.TransportHTTP}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	run, err := sqlexec.New(context.Background(), db.Pool, sqlexec.Options{MaxRows: cfg.MaxRows, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	o.Logger = log
	v, err := auth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	srv := mcp.New(mcp.Options{Config: cfg, Pool: db.Pool, Runner: run, Logger: log, Version: "test", Auth: v})
	t.Cleanup(srv.Close)
	sdk.AddTool(srv.SDK(), &sdk.Tool{Name: "whoami", Description: "test only"},
		func(_ context.Context, req *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, auth.Identity, error) {
			if req.Extra == nil {
				return nil, auth.Identity{User: "<no Extra>"}, nil
			}
			return nil, auth.FromTokenInfo(req.Extra.TokenInfo), nil
		})
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// authRecorder is the go-sdk client's HTTP transport: it sends the bearer token and remembers the
// last answer's status and WWW-Authenticate header, and the URLs posted to.
type authRecorder struct {
	token string

	mu      sync.Mutex
	status  int
	wwwAuth string
	posts   []string
}

func (rt *authRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if rt.token != "" {
		r.Header.Set("Authorization", "Bearer "+rt.token)
	}
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil {
		rt.mu.Lock()
		rt.status, rt.wwwAuth = resp.StatusCode, resp.Header.Get("WWW-Authenticate")
		if r.Method == http.MethodPost {
			rt.posts = append(rt.posts, r.URL.String())
		}
		rt.mu.Unlock()
	}
	return resp, err
}

// connectAs connects the go-sdk client over "http" or "sse" with token.
func connectAs(baseURL, transport, token string) (*sdk.ClientSession, *authRecorder, error) {
	rec := &authRecorder{token: token}
	hc := &http.Client{Transport: rec}
	var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: baseURL + "/mcp", HTTPClient: hc, MaxRetries: -1}
	if transport == "sse" {
		tr = &sdk.SSEClientTransport{Endpoint: baseURL + "/sse", HTTPClient: hc}
	}
	// The session lives as long as the Connect context: do not cancel it.
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, nil).Connect(context.Background(), tr, nil)
	return cs, rec, err
}

// whoami connects as token over transport and returns the identity the tools see.
func whoami(t *testing.T, baseURL, transport, token string) auth.Identity {
	t.Helper()
	cs, _, err := connectAs(baseURL, transport, token)
	if err != nil {
		t.Fatalf("connect over %s: %v", transport, err)
	}
	defer cs.Close()
	data := ok(t, cs, "whoami", map[string]any{})
	return auth.Identity{User: data["User"].(string), Role: data["Role"].(string)}
}

func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	key, other := authtest.NewKey(t, "RS256", "k1"), authtest.NewKey(t, "ES256", "never-published")
	iss := authtest.NewIssuer(t, key)
	stranger := authtest.NewIssuer(t, key) // another issuer with the same key
	ts := authServer(t, auth.Options{
		Tokens:    []auth.StaticToken{{Name: "ci", Role: "reader", Token: "tok-ci"}, {Name: "ops", Role: "admin", Token: "tok-ops"}},
		Issuer:    iss.URL,
		Audiences: []string{testAudience},
		ClockSkew: 5 * time.Second,
	})
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := iss.Claims("alice", testAudience)
		c["role"] = "writer"
		if mod != nil {
			mod(c)
		}
		return c
	}
	now := time.Now()

	t.Run("accepted", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			token string
			want  auth.Identity
		}{
			{"static ci", "tok-ci", auth.Identity{User: "ci", Role: "reader"}},
			{"static ops", "tok-ops", auth.Identity{User: "ops", Role: "admin"}},
			{"jwt", authtest.Sign(t, key, claims(nil)), auth.Identity{User: "alice", Role: "writer"}},
		} {
			for _, tr := range []string{"http", "sse"} {
				if got := whoami(t, ts.URL, tr, tc.token); got != tc.want {
					t.Errorf("%s over %s: the tool saw %+v, want %+v", tc.name, tr, got, tc.want)
				}
			}
		}
		// A real tool works too.
		cs, _, err := connectAs(ts.URL, "http", "tok-ci")
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		if got := scalar(t, cs, "SELECT 40 + 2"); got != "42" {
			t.Errorf("query: %s", got)
		}
	})

	t.Run("refused", func(t *testing.T) {
		fetches := iss.JWKSRequests()
		for _, tc := range []struct {
			name   string
			token  string
			status int
		}{
			{"missing", "", 401},
			{"garbage", "not-a-token", 401},
			{"wrong static token", "tok-cj", 401},
			{"expired", authtest.Sign(t, key, claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Minute).Unix() })), 401},
			{"not yet valid", authtest.Sign(t, key, claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Minute).Unix() })), 401},
			{"no expiry", authtest.Sign(t, key, claims(func(c jwt.MapClaims) { delete(c, "exp") })), 401},
			{"wrong issuer", authtest.Sign(t, key, stranger.Claims("alice", testAudience)), 401},
			{"wrong audience", authtest.Sign(t, key, claims(func(c jwt.MapClaims) { c["aud"] = "another-service" })), 401},
			{"unknown key", authtest.Sign(t, other, claims(nil)), 401},
			{"no role", authtest.Sign(t, key, claims(func(c jwt.MapClaims) { delete(c, "role") })), 403},
		} {
			for _, tr := range []string{"http", "sse"} {
				cs, rec, err := connectAs(ts.URL, tr, tc.token)
				if err == nil {
					cs.Close()
					t.Errorf("%s over %s: connected", tc.name, tr)
					continue
				}
				if rec.status != tc.status {
					t.Errorf("%s over %s: HTTP %d, want %d", tc.name, tr, rec.status, tc.status)
				}
				wantHdr := `resource_metadata="` + ts.URL + "/.well-known/oauth-protected-resource/" + map[string]string{"http": "mcp", "sse": "sse"}[tr] + `"`
				if tc.status == 403 {
					wantHdr = `error="insufficient_scope"`
				}
				if !strings.Contains(rec.wwwAuth, wantHdr) {
					t.Errorf("%s over %s: WWW-Authenticate %q, want %s", tc.name, tr, rec.wwwAuth, wantHdr)
				}
			}
		}
		// 2 × the unknown kid: at most one fetch of the key set (rate limit), none for the rest.
		if n := iss.JWKSRequests() - fetches; n > 1 {
			t.Errorf("the refused tokens made %d key set fetches, want at most 1", n)
		}
	})

	t.Run("health and metrics", func(t *testing.T) {
		for _, tc := range []struct {
			path, token string
			status      int
		}{
			{"/healthz", "", 200},
			{"/readyz", "", 200},
			{"/metrics", "", 401},
			{"/metrics", "tok-cj", 401},
			{"/metrics", "tok-ops", 200},
		} {
			if code, _ := get(t, ts.URL+tc.path, tc.token); code != tc.status {
				t.Errorf("GET %s (token %q): %d, want %d", tc.path, tc.token, code, tc.status)
			}
		}
	})

	t.Run("protected resource metadata", func(t *testing.T) {
		ctx := context.Background()
		for _, tc := range []struct{ path, resource string }{
			{"/.well-known/oauth-protected-resource/mcp", ts.URL + "/mcp"},
			{"/.well-known/oauth-protected-resource/sse", ts.URL + "/sse"},
			{"/.well-known/oauth-protected-resource", ts.URL + "/mcp"},
		} {
			// The go-sdk client's own discovery, which checks that the resource matches.
			meta, err := oauthex.GetProtectedResourceMetadata(ctx, ts.URL+tc.path, tc.resource, http.DefaultClient)
			if err != nil {
				t.Fatalf("%s: %v", tc.path, err)
			}
			if len(meta.AuthorizationServers) != 1 || meta.AuthorizationServers[0] != iss.URL || meta.BearerMethodsSupported[0] != "header" {
				t.Errorf("%s: %+v", tc.path, meta)
			}
		}
		code, body := get(t, ts.URL+"/.well-known/oauth-protected-resource/mcp", "")
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); code != 200 || err != nil || m["resource"] != ts.URL+"/mcp" {
			t.Errorf("GET metadata: %d %s", code, body)
		}
	})

	t.Run("sse sessions are bound to their user", func(t *testing.T) {
		cs, rec, err := connectAs(ts.URL, "sse", "tok-ci")
		if err != nil {
			t.Fatal(err)
		}
		defer cs.Close()
		ok(t, cs, "whoami", map[string]any{})
		rec.mu.Lock()
		endpoint := rec.posts[0]
		rec.mu.Unlock()
		if !strings.Contains(endpoint, "sessionid=") {
			t.Fatalf("posted to %s", endpoint)
		}
		post := func(url, token string) int {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"jsonrpc":"2.0","id":99,"method":"tools/list","params":{}}`))
			req.Header.Set("Content-Type", "application/json")
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		for _, tc := range []struct {
			name, url, token string
			status           int
		}{
			{"another user", endpoint, "tok-ops", 403},
			{"another user with a JWT", endpoint, authtest.Sign(t, key, claims(nil)), 403},
			{"no token", endpoint, "", 401},
			{"unknown session", ts.URL + "/sse?sessionid=NOSUCHSESSION", "tok-ci", 404},
			{"the owner", endpoint, "tok-ci", 202},
		} {
			if got := post(tc.url, tc.token); got != tc.status {
				t.Errorf("%s: HTTP %d, want %d", tc.name, got, tc.status)
			}
		}
		// The owner's session still works.
		if got := ok(t, cs, "whoami", map[string]any{}); got["User"] != "ci" {
			t.Errorf("whoami after the hijack attempts: %v", got)
		}
	})
}

// TestHTTPAuthKeyRotation: the issuer starts signing with a new key after cairn has cached its
// key set; a token with the new kid is accepted once cairn fetches the set again, which the
// unknown kid triggers (at most once per minimum interval).
func TestHTTPAuthKeyRotation(t *testing.T) {
	t.Parallel()
	old, fresh := authtest.NewKey(t, "RS256", "2025-01"), authtest.NewKey(t, "EdDSA", "2025-02")
	iss := authtest.NewIssuer(t, old)
	// Real time plus an offset the test advances.
	var mu sync.Mutex
	var offset time.Duration
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return time.Now().Add(offset) }
	ts := authServer(t, auth.Options{Issuer: iss.URL, Audiences: []string{testAudience}, DefaultRole: "reader", Now: clock})
	token := func(k *authtest.Key) string {
		c := iss.Claims("grace", testAudience)
		c["exp"] = clock().Add(time.Hour).Unix()
		return authtest.Sign(t, k, c)
	}

	if got := whoami(t, ts.URL, "http", token(old)); got != (auth.Identity{User: "grace", Role: "reader"}) {
		t.Fatalf("old key: %+v", got)
	}
	iss.Publish(old, fresh)
	// Within the minimum interval since the last fetch, the new kid is refused without a fetch.
	if _, rec, err := connectAs(ts.URL, "http", token(fresh)); err == nil || rec.status != 401 {
		t.Errorf("new kid right after a fetch: %v (HTTP %d)", err, rec.status)
	}
	if n := iss.JWKSRequests(); n != 1 {
		t.Errorf("%d key set fetches, want 1", n)
	}
	mu.Lock()
	offset += auth.DefaultJWKSMinRefresh + time.Second
	mu.Unlock()
	for _, tr := range []string{"http", "sse"} {
		if got := whoami(t, ts.URL, tr, token(fresh)); got.User != "grace" {
			t.Errorf("new key over %s: %+v", tr, got)
		}
	}
	if n := iss.JWKSRequests(); n != 2 {
		t.Errorf("%d key set fetches, want 2", n)
	}
}

// TestServeAuthSettings runs the real binary with static tokens from the environment and a
// file, and JWTs from an issuer named by the predecessor's MCP_AUTH_* variables.
func TestServeAuthSettings(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	key := authtest.NewKey(t, "ES256", "k")
	iss := authtest.NewIssuer(t, key)
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("# cairn's callers\nops:admin:tok-ops\n"), 0o600)
	base, _, logs := httpProcess(t, []string{"CAIRN_AUTH_TOKENS=ci:reader:tok-ci", "MCP_AUTH_ISSUER=" + iss.URL, "MCP_AUTH_AUDIENCE=" + testAudience, "CAIRN_AUTH_DEFAULT_ROLE=reader"},
		"--database-url", db.URL, "--auth-tokens-file", file)
	for _, tc := range []struct {
		name, token string
		ok          bool
	}{
		{"env token", "tok-ci", true},
		{"file token", "tok-ops", true},
		{"jwt", authtest.Sign(t, key, iss.Claims("alice", testAudience)), true},
		{"none", "", false},
		{"wrong", "tok-xx", false},
	} {
		for _, tr := range []string{"http", "sse"} {
			cs, rec, err := connectAs(base, tr, tc.token)
			if !tc.ok {
				if err == nil || rec.status != 401 {
					t.Errorf("%s over %s: %v (HTTP %d), want 401", tc.name, tr, err, rec.status)
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s over %s: %v\n%s", tc.name, tr, err, logs)
			}
			if got := scalar(t, cs, "SELECT 'in'"); got != "in" {
				t.Errorf("%s over %s: %s", tc.name, tr, got)
			}
			cs.Close()
		}
	}
	if code, body := get(t, base+"/.well-known/oauth-protected-resource", ""); code != 200 || !strings.Contains(body, iss.URL) {
		t.Errorf("metadata: %d %s", code, body)
	}
	out := logs.String()
	if !strings.Contains(out, "ci(reader)") || !strings.Contains(out, "ops(admin)") || !strings.Contains(out, "JWT from "+iss.URL) {
		t.Errorf("the log should say which authentication is on:\n%s", out)
	}
	if strings.Contains(out, "tok-ci") || strings.Contains(out, "tok-ops") {
		t.Errorf("the log shows a token:\n%s", out)
	}

	// A bad token file stops cairn at once, saying where, without the token.
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("ci:reader:tok-ci\nops admin tok-secret\n"), 0o600)
	run := exec.Command(cairnBin, "serve", "--transport", "http", "--addr", testbin.FreeAddr(t), "--database-url", "host=/nonexistent", "--auth-tokens-file", bad)
	run.Env = cleanEnv()
	msg, err := run.CombinedOutput()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 2 {
		t.Fatalf("bad token file: want exit code 2, got %v: %s", err, msg)
	}
	if !strings.Contains(string(msg), bad+": line 2") || strings.Contains(string(msg), "tok-secret") {
		t.Errorf("bad token file: %s", msg)
	}
}
