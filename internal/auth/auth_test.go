package auth_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"

	"github.com/cairn-mcp/cairn/internal/auth"
	"github.com/cairn-mcp/cairn/internal/auth/authtest"
	"github.com/cairn-mcp/cairn/internal/config"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// clock is real time plus an offset the test advances, for the key set's refresh policy.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
}

func newClock() *clock { return &clock{} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

const aud = "https://cairn.test/mcp"

func mustNew(t *testing.T, o auth.Options) *auth.Verifier {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	v, err := auth.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseTokens(t *testing.T) {
	t.Parallel()
	good := "# cairn tokens\n\nci:reader:abc123\n ops : admin : x:y:z \r\n"
	toks, err := auth.ParseTokens(good, false, "tokens.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := []auth.StaticToken{{Name: "ci", Role: "reader", Token: "abc123"}, {Name: "ops", Role: "admin", Token: "x:y:z"}}
	if len(toks) != len(want) || toks[0] != want[0] || toks[1] != want[1] {
		t.Errorf("got %+v, want %+v", toks, want)
	}
	toks, err = auth.ParseTokens("a:r:t1,b:w:t2", true, "CAIRN_AUTH_TOKENS")
	if err != nil || len(toks) != 2 || toks[1].Name != "b" || toks[1].Token != "t2" {
		t.Errorf("list: %+v %v", toks, err)
	}
	for _, tc := range []struct{ text, want string }{
		{"ci:reader", "line 1: want name:role:token"},
		{"\nci::supersecret", "line 2 (ci): the role must be one word"},
		{":reader:supersecret", "the name must be one word"},
		{"ci:reader:", "the token is empty"},
		{"ci:reader:super secret", "contains white space"},
	} {
		_, err := auth.ParseTokens(tc.text, false, "f")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want %q", tc.text, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "supersecret") {
			t.Errorf("%q: the error quotes the token: %v", tc.text, err)
		}
	}
}

func TestStaticTokens(t *testing.T) {
	t.Parallel()
	v := mustNew(t, auth.Options{Tokens: []auth.StaticToken{
		{Name: "ci", Role: "reader", Token: "tok-ci"},
		{Name: "ops", Role: "admin", Token: "tok-ops-longer"},
	}})
	for _, tc := range []struct {
		token string
		want  auth.Identity
	}{
		{"tok-ci", auth.Identity{User: "ci", Role: "reader", Method: auth.MethodToken}},
		{"tok-ops-longer", auth.Identity{User: "ops", Role: "admin", Method: auth.MethodToken}},
	} {
		ti, err := v.Verify(context.Background(), tc.token, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.want.User, err)
		}
		if got := auth.FromTokenInfo(ti); got != tc.want {
			t.Errorf("got %+v, want %+v", got, tc.want)
		}
		if ti.UserID != tc.want.User || !ti.Expiration.IsZero() {
			t.Errorf("TokenInfo %+v", ti)
		}
	}
	for _, bad := range []string{"", "tok", "tok-ci ", "tok-cj", "tok-ops-longer2"} {
		_, err := v.Verify(context.Background(), bad, nil)
		if !errors.Is(err, sdkauth.ErrInvalidToken) {
			t.Errorf("%q: %v, want ErrInvalidToken", bad, err)
		}
	}
	for _, toks := range [][]auth.StaticToken{
		{{Name: "a", Role: "r", Token: "x"}, {Name: "a", Role: "r", Token: "y"}},
		{{Name: "a", Role: "r", Token: "x"}, {Name: "b", Role: "r", Token: "x"}},
		{{Name: "a", Token: "x"}},
	} {
		if _, err := auth.New(auth.Options{Tokens: toks}); err == nil {
			t.Errorf("%+v: want an error", toks)
		}
	}
}

func TestOptionsFromConfig(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "tokens")
	os.WriteFile(file, []byte("# team\nalice:writer:tok-a\n"), 0o600)
	cfg := &config.Config{Transport: "http", Addr: "0.0.0.0:8080", AuthToken: "tok-main", AuthTokens: "bob:reader:tok-b", AuthTokensFile: file}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	v, err := auth.FromConfig(cfg, quiet)
	if err != nil {
		t.Fatal(err)
	}
	for tok, want := range map[string]auth.Identity{
		"tok-main": {User: "token", Role: "admin", Method: auth.MethodToken},
		"tok-a":    {User: "alice", Role: "writer", Method: auth.MethodToken},
		"tok-b":    {User: "bob", Role: "reader", Method: auth.MethodToken},
	} {
		ti, err := v.Verify(context.Background(), tok, nil)
		if err != nil || auth.FromTokenInfo(ti) != want {
			t.Errorf("%s: %+v %v, want %+v", want.User, ti, err, want)
		}
	}
	if d := v.Describe(); !strings.Contains(d, "3 static token(s)") || strings.Contains(d, "tok-") {
		t.Errorf("Describe = %q", d)
	}
	cfg.AuthTokensFile = filepath.Join(t.TempDir(), "missing")
	if _, err := auth.FromConfig(cfg, quiet); err == nil || !strings.Contains(err.Error(), "--auth-tokens-file") {
		t.Errorf("missing file: %v", err)
	}
}

func TestNewChecksSettings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		o    auth.Options
		want string
	}{
		{"no audience", auth.Options{Issuer: "https://idp.example"}, "--auth-audience"},
		{"plain http issuer", auth.Options{Issuer: "http://idp.example", Audiences: []string{aud}}, "https"},
		{"plain http jwks", auth.Options{Issuer: "https://idp.example", Audiences: []string{aud}, JWKSURL: "http://idp.example/keys"}, "--auth-jwks-url"},
		{"jwt settings without issuer", auth.Options{Audiences: []string{aud}}, "--auth-issuer"},
		{"bad public url", auth.Options{PublicURL: "cairn.example"}, "--public-url"},
	} {
		if _, err := auth.New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error mentioning %s", tc.name, err, tc.want)
		}
	}
	// The audience defaults to the public URL's endpoints.
	v := mustNew(t, auth.Options{Issuer: "https://idp.example", PublicURL: "https://cairn.example/mcp"})
	if d := v.Describe(); !strings.Contains(d, "aud https://cairn.example/mcp or https://cairn.example/sse") {
		t.Errorf("Describe = %q", d)
	}
}

func TestJWT(t *testing.T) {
	t.Parallel()
	rs, es, ed := authtest.NewKey(t, "RS256", "rs1"), authtest.NewKey(t, "ES256", "es1"), authtest.NewKey(t, "EdDSA", "ed1")
	stranger := authtest.NewKey(t, "RS256", "rs1") // same kid, not published
	iss := authtest.NewIssuer(t, rs, es, ed)
	other := authtest.NewIssuer(t, rs)
	v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, ClockSkew: time.Minute, RoleClaim: "realm_access.roles"})
	now := time.Now()
	with := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := iss.Claims("alice", aud)
		c["realm_access"] = map[string]any{"roles": []any{"writer", "reader"}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	hs := jwt.NewWithClaims(jwt.SigningMethodHS256, with(nil))
	hs.Header["kid"] = "rs1"
	hsToken, _ := hs.SignedString([]byte("secret"))
	none := jwt.NewWithClaims(jwt.SigningMethodNone, with(nil))
	noneToken, _ := none.SignedString(jwt.UnsafeAllowNoneSignatureType)

	for _, tc := range []struct {
		name  string
		token string
		want  string // "" = accepted
	}{
		{"RS256", authtest.Sign(t, rs, with(nil)), ""},
		{"ES256", authtest.Sign(t, es, with(nil)), ""},
		{"EdDSA", authtest.Sign(t, ed, with(nil)), ""},
		{"audience list", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["aud"] = []any{"other", aud} })), ""},
		{"expired within skew", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-30 * time.Second).Unix() })), ""},
		{"not before within skew", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(30 * time.Second).Unix() })), ""},
		{"expired", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * time.Minute).Unix() })), "expired (exp)"},
		{"not yet valid", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["nbf"] = now.Add(2 * time.Minute).Unix() })), "not valid yet (nbf)"},
		{"issued in the future", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["iat"] = now.Add(2 * time.Minute).Unix() })), "issued in the future (iat)"},
		{"no exp", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { delete(c, "exp") })), "no exp claim"},
		{"wrong audience", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { c["aud"] = "https://elsewhere/mcp" })), "another audience (aud)"},
		{"no audience", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { delete(c, "aud") })), "no aud claim"},
		{"wrong issuer", authtest.Sign(t, rs, other.Claims("alice", aud)), "another issuer (iss)"},
		{"no subject", authtest.Sign(t, rs, with(func(c jwt.MapClaims) { delete(c, "sub") })), "no subject"},
		{"signed by a stranger", authtest.Sign(t, stranger, with(nil)), "bad signature"},
		{"HS256 with the kid of an RSA key", hsToken, "bad signature or signing algorithm"},
		{"alg none", noneToken, "bad signature or signing algorithm"},
		{"malformed", "abc.def.ghi", "malformed"},
		{"not a JWT", "opaque-token", "not a JWT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ti, err := v.Verify(context.Background(), tc.token, nil)
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if got := auth.FromTokenInfo(ti); got != (auth.Identity{User: "alice", Role: "writer", Method: auth.MethodJWT, Issuer: iss.URL}) {
					t.Errorf("identity %+v", got)
				}
				if ti.Expiration.IsZero() {
					t.Error("no Expiration in the TokenInfo")
				}
				return
			}
			if !errors.Is(err, sdkauth.ErrInvalidToken) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want ErrInvalidToken saying %q", err, tc.want)
			}
			if strings.Contains(err.Error(), tc.token) {
				t.Errorf("the error quotes the token: %v", err)
			}
		})
	}
}

func TestRoleClaim(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "ES256", "k")
	iss := authtest.NewIssuer(t, k)
	for _, tc := range []struct {
		claim, dflt string
		claims      map[string]any
		want        string
	}{
		{"", "", map[string]any{"role": "reader"}, "reader"},
		{"roles", "", map[string]any{"roles": []any{"admin", "reader"}}, "admin"},
		{"https://cairn.example/role", "", map[string]any{"https://cairn.example/role": "writer"}, "writer"},
		{"app.meta.role", "", map[string]any{"app": map[string]any{"meta": map[string]any{"role": "writer"}}}, "writer"},
		{"", "reader", map[string]any{}, "reader"},
		{"", "", map[string]any{"role": []any{}}, ""},
	} {
		v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, RoleClaim: tc.claim, DefaultRole: tc.dflt})
		c := iss.Claims("bob", aud)
		for k, x := range tc.claims {
			c[k] = x
		}
		ti, err := v.Verify(context.Background(), authtest.Sign(t, k, c), nil)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		if got := auth.FromTokenInfo(ti).Role; got != tc.want {
			t.Errorf("claim %q %v: role %q, want %q", tc.claim, tc.claims, got, tc.want)
		}
	}
}

func TestScopes(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "ES256", "k")
	iss := authtest.NewIssuer(t, k)
	v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, RequiredScopes: []string{"cairn"}, DefaultRole: "reader",
		Tokens: []auth.StaticToken{{Name: "ops", Role: "admin", Token: "tok-ops"}}})
	h := v.Require(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for _, tc := range []struct {
		name  string
		scope any
		want  int
	}{
		{"scope string", "openid cairn", http.StatusNoContent},
		{"scp list", []any{"cairn"}, http.StatusNoContent},
		{"other scope", "openid", http.StatusForbidden},
		{"no scope", nil, http.StatusForbidden},
	} {
		c := iss.Claims("carol", aud)
		if s, isStr := tc.scope.(string); isStr {
			c["scope"] = s
		} else if tc.scope != nil {
			c["scp"] = tc.scope
		}
		code, hdr := do(h, "/mcp", authtest.Sign(t, k, c))
		if code != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, code, tc.want)
		}
		if code == http.StatusForbidden && !strings.Contains(hdr, `scope="cairn"`) {
			t.Errorf("%s: WWW-Authenticate %q does not name the scope", tc.name, hdr)
		}
	}
	if code, _ := do(h, "/mcp", "tok-ops"); code != http.StatusNoContent {
		t.Errorf("static token: %d (static tokens have every scope)", code)
	}
}

// do sends GET path with a bearer token ("" for none) and returns the status and the
// WWW-Authenticate header.
func do(h http.Handler, path, token string) (int, string) {
	r := httptest.NewRequest("GET", "http://cairn.test"+path, nil)
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w.Code, w.Header().Get("WWW-Authenticate")
}

func TestRequire(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "RS256", "k")
	iss := authtest.NewIssuer(t, k)
	var seen auth.Identity
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = auth.FromTokenInfo(sdkauth.TokenInfoFromContext(r.Context()))
	})
	jwtV := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}})
	staticV := mustNew(t, auth.Options{Tokens: []auth.StaticToken{{Name: "ci", Role: "reader", Token: "tok-ci"}}})
	noRole := authtest.Sign(t, k, iss.Claims("dave", aud))
	withRole := iss.Claims("erin", aud)
	withRole["role"] = "writer"
	for _, tc := range []struct {
		name       string
		v          *auth.Verifier
		path, tok  string
		code       int
		header     string
		identity   auth.Identity
		bodyHasNot string
	}{
		{"jwt: no token", jwtV, "/mcp", "", 401, `Bearer resource_metadata="http://cairn.test/.well-known/oauth-protected-resource/mcp"`, auth.Identity{}, ""},
		{"jwt: sse", jwtV, "/sse", "garbage", 401, `resource_metadata="http://cairn.test/.well-known/oauth-protected-resource/sse"`, auth.Identity{}, "garbage"},
		{"jwt: metrics", jwtV, "/metrics", "", 401, `resource_metadata="http://cairn.test/.well-known/oauth-protected-resource"`, auth.Identity{}, ""},
		{"jwt: no role", jwtV, "/mcp", noRole, 403, `error="insufficient_scope"`, auth.Identity{}, ""},
		{"jwt: ok", jwtV, "/mcp", authtest.Sign(t, k, withRole), 200, "", auth.Identity{User: "erin", Role: "writer", Method: auth.MethodJWT, Issuer: iss.URL}, ""},
		{"static: no token", staticV, "/mcp", "", 401, `Bearer realm="cairn"`, auth.Identity{}, ""},
		{"static: wrong", staticV, "/mcp", "tok-cj", 401, `Bearer realm="cairn"`, auth.Identity{}, "tok-cj"},
		{"static: ok", staticV, "/mcp", "tok-ci", 200, "", auth.Identity{User: "ci", Role: "reader", Method: auth.MethodToken}, ""},
	} {
		seen = auth.Identity{}
		r := httptest.NewRequest("POST", "http://cairn.test"+tc.path, nil)
		if tc.tok != "" {
			r.Header.Set("Authorization", "Bearer "+tc.tok)
		}
		w := httptest.NewRecorder()
		tc.v.Require(next).ServeHTTP(w, r)
		if w.Code != tc.code {
			t.Errorf("%s: %d %s, want %d", tc.name, w.Code, w.Body, tc.code)
		}
		if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, tc.header) || (tc.header == "") != (got == "") {
			t.Errorf("%s: WWW-Authenticate %q, want %q", tc.name, got, tc.header)
		}
		if seen != tc.identity {
			t.Errorf("%s: handler saw %+v, want %+v", tc.name, seen, tc.identity)
		}
		if tc.bodyHasNot != "" && strings.Contains(w.Body.String(), tc.bodyHasNot) {
			t.Errorf("%s: the answer quotes the token: %s", tc.name, w.Body)
		}
	}
	// Neither: nothing checked.
	var none *auth.Verifier
	if code, _ := do(none.Require(next), "/mcp", ""); code != 200 {
		t.Errorf("nil verifier: %d", code)
	}
}

// An issuer whose key endpoint hangs or fails makes JWT callers wait at most the fetch timeout
// and get 503 saying the keys could not be fetched, with no library error chain; static tokens
// of the same verifier keep working.
func TestRequireIssuerKeysUnavailable(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "RS256", "k")
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		reason  string
	}{
		{"hangs", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }, "no answer within 300ms"},
		{"fails", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusInternalServerError) }, "it answered HTTP 500"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			keys := httptest.NewServer(tc.handler)
			defer keys.Close()
			issuer := "https://issuer.example"
			v := mustNew(t, auth.Options{
				Issuer: issuer, JWKSURL: keys.URL, Audiences: []string{aud},
				Tokens:     []auth.StaticToken{{Name: "ci", Role: "reader", Token: "tok-ci"}},
				HTTPClient: &http.Client{Timeout: 300 * time.Millisecond},
			})
			claims := jwt.MapClaims{"iss": issuer, "sub": "a", "aud": aud, "role": "reader", "exp": time.Now().Add(time.Minute).Unix()}
			next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})
			r := httptest.NewRequest("POST", "http://cairn.test/mcp", nil)
			r.Header.Set("Authorization", "Bearer "+authtest.Sign(t, k, claims))
			w := httptest.NewRecorder()
			start := time.Now()
			v.Require(next).ServeHTTP(w, r)
			body := w.Body.String()
			if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" {
				t.Errorf("JWT while the issuer's keys %s: %d (Retry-After %q) %s, want 503 with Retry-After", tc.name, w.Code, w.Header().Get("Retry-After"), body)
			}
			if !strings.Contains(body, "signing keys could not be fetched ("+tc.reason+")") || strings.Contains(body, "keyfunc") || strings.Contains(body, "unverifiable") {
				t.Errorf("body %q: want the reason %q and no library error chain", body, tc.reason)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the refusal took %s", d)
			}
			if code, _ := do(v.Require(next), "/mcp", "tok-ci"); code != http.StatusOK {
				t.Errorf("static token while the issuer's keys %s: %d, want 200", tc.name, code)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	t.Parallel()
	old, fresh := authtest.NewKey(t, "RS256", "2024"), authtest.NewKey(t, "ES256", "2025")
	iss := authtest.NewIssuer(t, old)
	clk := newClock()
	v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, DefaultRole: "reader", Now: clk.Now})
	verify := func(k *authtest.Key) error {
		c := iss.Claims("frank", aud)
		c["exp"] = clk.Now().Add(time.Hour).Unix() // the test clock runs ahead
		_, err := v.Verify(context.Background(), authtest.Sign(t, k, c), nil)
		return err
	}
	if err := verify(old); err != nil {
		t.Fatal(err)
	}
	if n := iss.JWKSRequests(); n != 1 {
		t.Fatalf("%d key set fetches, want 1", n)
	}
	// The issuer rotates. Just after the last fetch, the new kid is not looked for (rate limit)...
	iss.Publish(old, fresh)
	if err := verify(fresh); !errors.Is(err, sdkauth.ErrInvalidToken) || !strings.Contains(err.Error(), `no key "2025"`) {
		t.Errorf("new kid right after a fetch: %v", err)
	}
	if n := iss.JWKSRequests(); n != 1 {
		t.Errorf("%d key set fetches, want still 1", n)
	}
	// ...but once the minimum interval has passed, the unknown kid makes cairn fetch the set again.
	clk.Advance(auth.DefaultJWKSMinRefresh + time.Second)
	if err := verify(fresh); err != nil {
		t.Fatalf("new kid after the rotation: %v", err)
	}
	if n := iss.JWKSRequests(); n != 2 {
		t.Errorf("%d key set fetches, want 2", n)
	}
	// The old key is retired: once the set is older than the refresh period, a token signed with
	// it still verifies (the cached set serves while a background fetch runs), and after that
	// fetch it does not.
	iss.Publish(fresh)
	clk.Advance(auth.DefaultJWKSRefresh)
	if err := verify(old); err != nil {
		t.Fatalf("old key while the refresh runs: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for verify(old) == nil {
		if time.Now().After(deadline) {
			t.Fatal("the retired key still verifies after the periodic refresh")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := iss.JWKSRequests(); n != 3 {
		t.Errorf("%d key set fetches, want 3", n)
	}
	if n := iss.DiscoveryRequests(); n != 1 {
		t.Errorf("%d discovery fetches, want 1 (the key set's URL is remembered)", n)
	}
}

func TestUnknownKidDoesNotHammer(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "ES256", "real")
	iss := authtest.NewIssuer(t, k)
	v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, DefaultRole: "reader"})
	bogus := authtest.NewKey(t, "ES256", "made-up")
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), authtest.Sign(t, bogus, iss.Claims("mallory", aud)), nil)
			if !errors.Is(err, sdkauth.ErrInvalidToken) {
				t.Errorf("unknown kid: %v", err)
			}
		})
	}
	wg.Wait()
	if n := iss.JWKSRequests(); n != 1 {
		t.Errorf("50 tokens with an unknown kid made %d key set fetches, want 1", n)
	}
	// A stranger's token (another iss) makes no fetch at all.
	v2 := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}})
	c := iss.Claims("mallory", aud)
	c["iss"] = "https://evil.example"
	if _, err := v2.Verify(context.Background(), authtest.Sign(t, bogus, c), nil); !errors.Is(err, sdkauth.ErrInvalidToken) {
		t.Errorf("stranger: %v", err)
	}
	if n := iss.JWKSRequests(); n != 1 {
		t.Errorf("a token from another issuer made cairn fetch keys (%d fetches)", n)
	}
}

func TestDiscovery(t *testing.T) {
	t.Parallel()
	k := authtest.NewKey(t, "EdDSA", "k")
	t.Run("fallback to jwks.json", func(t *testing.T) {
		t.Parallel()
		iss := authtest.NewIssuer(t, k)
		iss.NoDiscovery()
		v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, DefaultRole: "r"})
		if _, err := v.Verify(context.Background(), authtest.Sign(t, k, iss.Claims("a", aud)), nil); err != nil {
			t.Fatal(err)
		}
		if iss.JWKSRequests() != 1 {
			t.Errorf("%d key set fetches", iss.JWKSRequests())
		}
	})
	t.Run("explicit jwks url", func(t *testing.T) {
		t.Parallel()
		iss := authtest.NewIssuer(t, k)
		v := mustNew(t, auth.Options{Issuer: iss.URL, Audiences: []string{aud}, JWKSURL: iss.URL + "/keys", DefaultRole: "r"})
		if _, err := v.Verify(context.Background(), authtest.Sign(t, k, iss.Claims("a", aud)), nil); err != nil {
			t.Fatal(err)
		}
		if iss.DiscoveryRequests() != 0 {
			t.Errorf("discovery fetched although --auth-jwks-url is set")
		}
	})
	t.Run("issuer down", func(t *testing.T) {
		t.Parallel()
		down := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Error(w, "oops", http.StatusBadGateway)
		}))
		defer down.Close()
		v := mustNew(t, auth.Options{Issuer: down.URL, Audiences: []string{aud}})
		c := jwt.MapClaims{"iss": down.URL, "sub": "a", "aud": aud, "exp": time.Now().Add(time.Minute).Unix()}
		_, err := v.Verify(context.Background(), authtest.Sign(t, k, c), nil)
		if err == nil || errors.Is(err, sdkauth.ErrInvalidToken) || !strings.Contains(err.Error(), "could not be fetched (it answered HTTP 502)") {
			t.Errorf("issuer down: %v, want a server-side error (not an invalid token)", err)
		}
	})
}

func TestMetadata(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		public, path, want string
	}{
		{"", "/.well-known/oauth-protected-resource", "http://cairn.test/mcp"},
		{"", "/.well-known/oauth-protected-resource/mcp", "http://cairn.test/mcp"},
		{"", "/.well-known/oauth-protected-resource/sse", "http://cairn.test/sse"},
		{"https://cairn.example/base/", "/.well-known/oauth-protected-resource/base/mcp", "https://cairn.example/base/mcp"},
	} {
		v := mustNew(t, auth.Options{Issuer: "https://idp.example", Audiences: []string{aud}, RequiredScopes: []string{"cairn"}, PublicURL: tc.public})
		w := httptest.NewRecorder()
		v.MetadataHandler().ServeHTTP(w, httptest.NewRequest("GET", "http://cairn.test"+tc.path, nil))
		var got map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil || w.Code != 200 {
			t.Fatalf("%s: %d %s", tc.path, w.Code, w.Body)
		}
		if got["resource"] != tc.want {
			t.Errorf("%s: resource %v, want %s", tc.path, got["resource"], tc.want)
		}
		b, _ := json.Marshal(got)
		for _, want := range []string{`"authorization_servers":["https://idp.example"]`, `"bearer_methods_supported":["header"]`, `"scopes_supported":["cairn"]`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: %s lacks %s", tc.path, b, want)
			}
		}
	}
	if mustNew(t, auth.Options{Tokens: []auth.StaticToken{{Name: "a", Role: "b", Token: "c"}}}).MetadataHandler() != nil {
		t.Error("metadata without an issuer")
	}
}
