package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// Options configure a Verifier. With neither Tokens nor Issuer, nothing is checked.
type Options struct {
	// Tokens are the static bearer tokens.
	Tokens []StaticToken

	// Issuer enables JWTs: they must carry this iss and be signed by one of its keys.
	Issuer string
	// Audiences are the aud values accepted (any one will do). Default: PublicURL's /mcp and
	// /sse; with neither, New fails (a token the issuer made for another service must not work
	// here).
	Audiences []string
	// JWKSURL is the issuer's key set. Default: the jwks_uri of its discovery document
	// (/.well-known/openid-configuration, then /.well-known/oauth-authorization-server), else
	// <issuer>/.well-known/jwks.json.
	JWKSURL string
	// RoleClaim names the claim that holds the caller's role: a top-level claim, or a dotted
	// path into nested objects; a list gives its first entry. Default "role".
	RoleClaim string
	// DefaultRole is the role of a JWT without the role claim; "" refuses such tokens (403).
	DefaultRole string
	// ClockSkew is the tolerance on exp, nbf and iat.
	ClockSkew time.Duration
	// RequiredScopes must all be in a JWT's scope (or scp) claim, or the request gets 403.
	// Static tokens are trusted with every scope.
	RequiredScopes []string

	// PublicURL is the base URL clients reach cairn at (https://cairn.example.com); the MCP
	// endpoints are its /mcp and /sse. Default: each request's scheme and Host.
	PublicURL string

	// HTTPClient fetches discovery documents and key sets; default one with a 10 s timeout.
	HTTPClient *http.Client
	// JWKSRefresh and JWKSMinRefresh are the key set's refresh policy; defaults
	// DefaultJWKSRefresh and DefaultJWKSMinRefresh.
	JWKSRefresh, JWKSMinRefresh time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Logger; default slog.Default().
	Logger *slog.Logger
}

// Verifier checks bearer tokens: the static ones first (in constant time), then JWTs. Its
// Verify method is an sdkauth.TokenVerifier; Require wraps a handler in the go-sdk's bearer
// middleware with it. A nil *Verifier checks nothing.
type Verifier struct {
	static    *staticSet
	jwt       *jwtVerifier
	issuer    string
	audiences []string
	scopes    []string
	skew      time.Duration
	public    *url.URL // nil: from each request
	log       *slog.Logger
}

// New checks the options and builds the Verifier. It fetches nothing: the issuer's key set is
// fetched on first use.
func New(o Options) (*Verifier, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	v := &Verifier{issuer: o.Issuer, scopes: slices.Clone(o.RequiredScopes), skew: o.ClockSkew, log: o.Logger}
	if o.ClockSkew < 0 {
		return nil, fmt.Errorf("--auth-clock-skew %s: must not be negative", o.ClockSkew)
	}
	if o.PublicURL != "" {
		u, err := ParsePublicURL(o.PublicURL)
		if err != nil {
			return nil, err
		}
		v.public = u
	}
	if len(o.Tokens) > 0 {
		s, err := newStaticSet(o.Tokens)
		if err != nil {
			return nil, err
		}
		v.static = s
	}
	if o.Issuer == "" {
		if o.JWKSURL != "" || len(o.Audiences) > 0 || o.DefaultRole != "" || len(o.RequiredScopes) > 0 {
			return nil, errors.New("--auth-audience, --auth-jwks-url, --auth-default-role and --auth-required-scope are JWT settings: set --auth-issuer too")
		}
		return v, nil
	}
	if err := checkFetchURL(o.Issuer); err != nil {
		return nil, fmt.Errorf("--auth-issuer: %w", err)
	}
	if o.JWKSURL != "" {
		if err := checkFetchURL(o.JWKSURL); err != nil {
			return nil, fmt.Errorf("--auth-jwks-url: %w", err)
		}
	}
	v.audiences = slices.Clone(o.Audiences)
	if len(v.audiences) == 0 {
		if v.public == nil {
			return nil, errors.New("--auth-issuer needs --auth-audience (the aud your issuer puts in the tokens it makes for cairn, e.g. https://cairn.example.com/mcp) or --public-url (then the audience is its /mcp)")
		}
		v.audiences = []string{v.resource(nil, "/mcp"), v.resource(nil, "/sse")}
	}
	if o.RoleClaim == "" {
		o.RoleClaim = "role"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: fetchTimeout}
	}
	if o.JWKSRefresh <= 0 {
		o.JWKSRefresh = DefaultJWKSRefresh
	}
	if o.JWKSMinRefresh < 0 {
		o.JWKSMinRefresh = 0
	} else if o.JWKSMinRefresh == 0 {
		o.JWKSMinRefresh = DefaultJWKSMinRefresh
	}
	v.jwt = &jwtVerifier{
		issuer:      o.Issuer,
		roleClaim:   o.RoleClaim,
		defaultRole: o.DefaultRole,
		parser: jwt.NewParser(
			jwt.WithValidMethods(jwtAlgs),
			jwt.WithIssuer(o.Issuer),
			jwt.WithAudience(v.audiences...),
			jwt.WithExpirationRequired(),
			jwt.WithIssuedAt(),
			jwt.WithLeeway(o.ClockSkew),
			jwt.WithTimeFunc(o.Now),
		),
		keys: &jwksCache{
			issuer: o.Issuer, url: o.JWKSURL, client: o.HTTPClient, log: o.Logger, now: o.Now,
			refresh: o.JWKSRefresh, minRefresh: o.JWKSMinRefresh,
		},
	}
	return v, nil
}

// ParsePublicURL checks a --public-url: an absolute http(s) URL; a trailing slash, or a final
// /mcp or /sse (the endpoint's URL given for the server's), is dropped.
func ParsePublicURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("--public-url %q: want the absolute URL clients reach cairn at, e.g. https://cairn.example.com", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.Path = strings.TrimSuffix(strings.TrimSuffix(u.Path, "/mcp"), "/sse")
	u.RawPath = ""
	return u, nil
}

// Enabled reports whether any authentication is configured.
func (v *Verifier) Enabled() bool { return v != nil && (v.static != nil || v.jwt != nil) }

// Issuer is the JWT issuer, "" when JWTs are off.
func (v *Verifier) Issuer() string {
	if v == nil || v.jwt == nil {
		return ""
	}
	return v.issuer
}

// Describe says which authentication modes are on, for the log; it names no secret.
func (v *Verifier) Describe() string {
	if !v.Enabled() {
		return "none"
	}
	var modes []string
	if v.static != nil {
		var names []string
		for _, id := range v.static.ids {
			names = append(names, id.User+"("+id.Role+")")
		}
		modes = append(modes, fmt.Sprintf("%d static token(s): %s", len(names), strings.Join(names, ", ")))
	}
	if v.jwt != nil {
		jwks := "discovered"
		v.jwt.keys.mu.Lock()
		if v.jwt.keys.url != "" {
			jwks = v.jwt.keys.url
		}
		v.jwt.keys.mu.Unlock()
		modes = append(modes, fmt.Sprintf("JWT from %s (aud %s; keys %s; role claim %q)", v.issuer, strings.Join(v.audiences, " or "), jwks, v.jwt.roleClaim))
	}
	if len(v.scopes) > 0 {
		modes = append(modes, "required scopes: "+strings.Join(v.scopes, " "))
	}
	return strings.Join(modes, "; ")
}

// Verify is an sdkauth.TokenVerifier: it returns the TokenInfo of the token's Identity, or an
// error wrapping sdkauth.ErrInvalidToken that says what was wrong without quoting the token.
func (v *Verifier) Verify(ctx context.Context, token string, _ *http.Request) (*sdkauth.TokenInfo, error) {
	if v.static != nil {
		if id, ok := v.static.lookup(token); ok {
			ti := id.TokenInfo()
			ti.Scopes = slices.Clone(v.scopes) // an operator's token is trusted with every scope
			return ti, nil
		}
	}
	if v.jwt != nil {
		if strings.Count(token, ".") == 2 {
			return v.jwt.verify(ctx, token)
		}
		if v.static != nil {
			return nil, fmt.Errorf("%w: neither a configured token nor a JWT", sdkauth.ErrInvalidToken)
		}
		return nil, fmt.Errorf("%w: not a JWT", sdkauth.ErrInvalidToken)
	}
	return nil, fmt.Errorf("%w: not a configured token", sdkauth.ErrInvalidToken)
}

// Require wraps next in the go-sdk's bearer-token middleware with Verify: no token or a bad one
// gets 401, a JWT without a required scope or without a role 403, each with a WWW-Authenticate
// header (pointing at the protected resource metadata when an issuer is configured). A nil or
// disabled Verifier returns next as it is.
func (v *Verifier) Require(next http.Handler) http.Handler {
	if !v.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		opts := &sdkauth.RequireBearerTokenOptions{
			Scopes:                 v.scopes,
			AllowMissingExpiration: true, // static tokens do not expire; JWTs must have exp (checked in Verify)
			ClockSkew:              v.skew,
		}
		if v.jwt != nil {
			opts.ResourceMetadataURL = v.MetadataURL(r)
		}
		// The SDK's middleware writes its refusals to rec, so that they can get a
		// WWW-Authenticate header even without metadata; what it lets through is served on w.
		var passed *http.Request
		var verr error
		verify := func(ctx context.Context, token string, r *http.Request) (*sdkauth.TokenInfo, error) {
			ti, err := v.Verify(ctx, token, r)
			verr = err
			return ti, err
		}
		rec := &refusal{header: http.Header{}}
		sdkauth.RequireBearerToken(verify, opts)(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			passed = r
		})).ServeHTTP(rec, r)
		if passed == nil {
			if ku := (*KeysUnavailableError)(nil); errors.As(verr, &ku) {
				// The SDK answers 500; the issuer being unreachable is a temporary unavailability.
				rec = &refusal{header: http.Header{"Retry-After": {"10"}}, code: http.StatusServiceUnavailable, body: []byte(ku.Error() + "\n")}
			}
			v.refuse(w, r, rec)
			return
		}
		if id := FromTokenInfo(sdkauth.TokenInfoFromContext(passed.Context())); id.Role == "" {
			claim := "role"
			if v.jwt != nil {
				claim = v.jwt.roleClaim
			}
			msg := fmt.Sprintf("the token for %q carries no role (claim %q) and no --auth-default-role is set", id.User, claim)
			rec = &refusal{header: http.Header{}, code: http.StatusForbidden, body: []byte(msg + "\n")}
			rec.header.Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_scope", error_description=%q`, "the token carries no role"))
			v.refuse(w, r, rec)
			return
		}
		next.ServeHTTP(w, passed)
	})
}

// refuse sends a refusal the middleware recorded, adding a WWW-Authenticate header to a 401 or
// 403 that lacks one (RFC 6750 §3).
func (v *Verifier) refuse(w http.ResponseWriter, r *http.Request, rec *refusal) {
	code := rec.code
	if code == 0 {
		code = http.StatusOK
	}
	h := w.Header()
	for k, vs := range rec.header {
		h[k] = vs
	}
	if (code == http.StatusUnauthorized || code == http.StatusForbidden) && h.Get("WWW-Authenticate") == "" {
		h.Set("WWW-Authenticate", `Bearer realm="cairn"`)
	}
	reason := string(bytes.TrimSpace(rec.body))
	if code >= 500 {
		v.log.Warn("cannot authenticate a request", "path", r.URL.Path, "remote", r.RemoteAddr, "status", code, "reason", reason)
	} else {
		v.log.Debug("request refused", "path", r.URL.Path, "remote", r.RemoteAddr, "status", code, "reason", reason)
	}
	w.WriteHeader(code)
	_, _ = w.Write(rec.body) // a client that went away cannot be told
}

// refusal records what the SDK's middleware answers when it refuses a request.
type refusal struct {
	header http.Header
	code   int
	body   []byte
}

func (r *refusal) Header() http.Header { return r.header }

func (r *refusal) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
}

func (r *refusal) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	r.body = append(r.body, p...)
	return len(p), nil
}
