package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// JWKS refresh policy defaults.
const (
	// DefaultJWKSRefresh is how old the cached key set may grow before it is fetched again (in
	// the background; the cached keys keep serving meanwhile).
	DefaultJWKSRefresh = 10 * time.Minute
	// DefaultJWKSMinRefresh is the least time between two fetches of the key set: a token
	// signed with a key the set does not have triggers a fetch at most this often, so a stream
	// of tokens with made-up key ids cannot make cairn hammer the issuer.
	DefaultJWKSMinRefresh = 30 * time.Second
	// fetchTimeout bounds one fetch of the discovery document or the key set.
	fetchTimeout = 10 * time.Second
	// maxDocBytes bounds what a discovery document or key set may weigh.
	maxDocBytes = 1 << 20
)

// KeysUnavailableError is a token that could not be checked because the issuer's keys could not
// be fetched (the issuer is down, hangs or is misconfigured): not the caller's fault, so not an
// invalid token. Require answers it with 503 and its message, which names no library error; the
// server log has the whole cause.
type KeysUnavailableError struct {
	// Reason says briefly what went wrong, e.g. "no answer within 10s" or "HTTP 500".
	Reason string
}

func (e *KeysUnavailableError) Error() string {
	return "cannot verify the token: the issuer's signing keys could not be fetched (" + e.Reason + "); retry shortly — static tokens are not affected"
}

// keysUnavailable describes why a fetch of the keys failed, briefly and without library error
// chains (the log has them).
func (c *jwksCache) keysUnavailable(err error) *KeysUnavailableError {
	var se *httpStatusError
	var ue *url.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ue) && ue.Timeout():
		wait := fetchTimeout
		if c.client.Timeout > 0 && c.client.Timeout < wait {
			wait = c.client.Timeout
		}
		return &KeysUnavailableError{Reason: "no answer within " + wait.String()}
	case errors.As(err, &se):
		return &KeysUnavailableError{Reason: "it answered HTTP " + strconv.Itoa(se.code)}
	case errors.As(err, &ue):
		return &KeysUnavailableError{Reason: "it cannot be reached"}
	}
	return &KeysUnavailableError{Reason: "its answer could not be used; see the server log"}
}

// httpStatusError is an answer other than 200 OK.
type httpStatusError struct {
	url    string
	code   int
	status string
}

func (e *httpStatusError) Error() string { return "GET " + e.url + ": HTTP " + e.status }

// jwk is one usable verification key of a key set.
type jwk struct {
	kid string
	alg string // the key's "alg", if the set names one
	key any    // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// fits reports whether the key can verify a token signed with alg.
func (k jwk) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// jwksCache holds an issuer's key set: fetched on first use, refreshed in the background once it
// is older than refresh, and at once (rate-limited by minRefresh) when a token names a key id
// it does not have — which is how a key rotation is picked up.
type jwksCache struct {
	issuer     string
	client     *http.Client
	log        *slog.Logger
	now        func() time.Time
	refresh    time.Duration
	minRefresh time.Duration

	mu       sync.Mutex
	url      string // the key set's URL: configured, or found by discovery
	keys     []jwk
	fetched  time.Time     // last successful fetch
	tried    time.Time     // last fetch started
	lastErr  error         // error of the last fetch, nil if it worked
	inflight chan struct{} // closed when the fetch under way ends; nil when none is
}

// lookup returns the keys that may have signed a token with kid and alg ("" kid: every key that
// fits alg).
func (c *jwksCache) lookup(ctx context.Context, kid, alg string) ([]any, error) {
	c.mu.Lock()
	keys := c.match(kid, alg)
	if len(keys) > 0 {
		if c.now().Sub(c.fetched) >= c.refresh {
			c.startFetchLocked() // stale: refresh in the background, serve what we have
		}
		c.mu.Unlock()
		return keys, nil
	}
	done := c.startFetchLocked()
	if done == nil {
		defer c.mu.Unlock()
		if len(c.keys) == 0 && c.lastErr != nil {
			return nil, c.keysUnavailable(c.lastErr)
		}
		return nil, c.unknown(kid, c.tried)
	}
	c.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		if len(c.keys) == 0 {
			return nil, c.keysUnavailable(ctx.Err())
		}
		return nil, ctx.Err()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if keys := c.match(kid, alg); len(keys) > 0 {
		return keys, nil
	}
	if c.lastErr != nil && len(c.keys) == 0 {
		return nil, c.keysUnavailable(c.lastErr)
	}
	return nil, c.unknown(kid, c.tried)
}

func (c *jwksCache) unknown(kid string, fetched time.Time) error {
	ago := c.now().Sub(fetched).Round(time.Second)
	if kid == "" {
		return fmt.Errorf("no key in the issuer's key set fits the token's algorithm (key set fetched %s ago)", ago)
	}
	return fmt.Errorf("the issuer's key set has no key %q (fetched %s ago)", kid, ago)
}

func (c *jwksCache) match(kid, alg string) []any {
	var out []any
	for _, k := range c.keys {
		if (kid == "" || k.kid == kid) && k.fits(alg) {
			out = append(out, k.key)
		}
	}
	return out
}

// startFetchLocked starts a fetch of the key set unless one is under way (it returns that one's
// channel) or the last started less than minRefresh ago (it returns nil). c.mu must be held.
func (c *jwksCache) startFetchLocked() <-chan struct{} {
	if c.inflight != nil {
		return c.inflight
	}
	if !c.tried.IsZero() && c.now().Sub(c.tried) < c.minRefresh {
		return nil
	}
	c.tried = c.now()
	done := make(chan struct{})
	c.inflight = done
	go func() {
		// Not the request's context: other requests wait for this fetch too.
		ctx, cancel := context.WithTimeout(context.Background(), 2*fetchTimeout)
		defer cancel()
		keys, url, err := c.fetch(ctx)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.lastErr = err
		if err == nil {
			c.keys, c.fetched, c.url = keys, c.now(), url
			c.log.Debug("fetched the issuer's key set", "url", url, "keys", len(keys))
		} else {
			c.log.Warn("cannot fetch the issuer's key set; keeping the keys already known", "issuer", c.issuer, "keys_known", len(c.keys), "err", err)
		}
		c.inflight = nil
		close(done)
	}()
	return done
}

// fetch finds the key set's URL (once) and fetches and parses the set.
func (c *jwksCache) fetch(ctx context.Context) ([]jwk, string, error) {
	c.mu.Lock()
	u := c.url
	c.mu.Unlock()
	if u == "" {
		var err error
		if u, err = c.discover(ctx); err != nil {
			return nil, "", err
		}
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if _, err := c.getJSON(ctx, u, &set); err != nil {
		return nil, u, fmt.Errorf("key set: %w", err)
	}
	var keys []jwk
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			c.log.Debug("skipping a key of the issuer's key set", "url", u, "index", i, "err", err)
			continue
		}
		if k.key != nil {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, u, fmt.Errorf("key set %s has no usable signing key (RSA, EC P-256/384/521 or Ed25519)", u)
	}
	return keys, u, nil
}

// discover finds the key set's URL: the jwks_uri of the issuer's OpenID Connect discovery
// document, else of its OAuth authorization server metadata (RFC 8414), else
// <issuer>/.well-known/jwks.json.
func (c *jwksCache) discover(ctx context.Context) (string, error) {
	iss := strings.TrimSuffix(c.issuer, "/")
	docs := []string{iss + "/.well-known/openid-configuration"}
	if u, err := url.Parse(iss); err == nil {
		// RFC 8414 puts the well-known segment before the issuer's path.
		docs = append(docs, u.Scheme+"://"+u.Host+"/.well-known/oauth-authorization-server"+u.Path)
	}
	for _, d := range docs {
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		status, err := c.getJSON(ctx, d, &meta)
		if status >= 400 && status < 500 {
			continue // no such document: try the next
		}
		if err != nil {
			return "", fmt.Errorf("discovery: %w", err)
		}
		if meta.Issuer != "" && strings.TrimSuffix(meta.Issuer, "/") != iss {
			return "", fmt.Errorf("discovery: %s names issuer %q, not %q", d, meta.Issuer, c.issuer)
		}
		if meta.JWKSURI == "" {
			continue
		}
		if err := checkFetchURL(meta.JWKSURI); err != nil {
			return "", fmt.Errorf("discovery: %s: jwks_uri: %w", d, err)
		}
		return meta.JWKSURI, nil
	}
	return iss + "/.well-known/jwks.json", nil
}

// getJSON GETs u into v; it returns the HTTP status (0 if there was no answer).
func (c *jwksCache) getJSON(ctx context.Context, u string, v any) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, fetchTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drained so the connection can be reused; what the body says is not needed.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocBytes))
		return resp.StatusCode, &httpStatusError{url: u, code: resp.StatusCode, status: resp.Status}
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxDocBytes)).Decode(v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: not JSON: %w", u, err)
	}
	return resp.StatusCode, nil
}

// checkFetchURL accepts https URLs, and http ones to loopback hosts only (a key set fetched in
// the clear could be swapped for an attacker's).
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("%s: use https (plain http only to a loopback address)", raw)
	}
	return fmt.Errorf("%s: use https", raw)
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// parseJWK turns a JSON Web Key into a public key; a key of a type cairn does not verify with,
// or one not meant for signatures, gives a zero jwk and no error.
func parseJWK(raw json.RawMessage) (jwk, error) {
	var k struct {
		Kty    string   `json:"kty"`
		Kid    string   `json:"kid"`
		Use    string   `json:"use"`
		Alg    string   `json:"alg"`
		KeyOps []string `json:"key_ops"`
		Crv    string   `json:"crv"`
		N      string   `json:"n"`
		E      string   `json:"e"`
		X      string   `json:"x"`
		Y      string   `json:"y"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return jwk{}, err
	}
	if k.Use != "" && k.Use != "sig" {
		return jwk{}, nil
	}
	if len(k.KeyOps) > 0 && !slices.Contains(k.KeyOps, "verify") {
		return jwk{}, nil
	}
	out := jwk{kid: k.Kid, alg: k.Alg}
	switch k.Kty {
	case "RSA":
		n, err := b64int(k.N)
		if err != nil {
			return jwk{}, fmt.Errorf("kid %q: n: %w", k.Kid, err)
		}
		e, err := b64int(k.E)
		if err != nil || !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return jwk{}, fmt.Errorf("kid %q: bad exponent e", k.Kid)
		}
		if n.BitLen() < 2048 {
			return jwk{}, fmt.Errorf("kid %q: RSA key of %d bits; at least 2048 are needed", k.Kid, n.BitLen())
		}
		out.key = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return jwk{}, fmt.Errorf("kid %q: curve %q is not supported", k.Kid, k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, errx := base64.RawURLEncoding.DecodeString(k.X)
		y, erry := base64.RawURLEncoding.DecodeString(k.Y)
		if errx != nil || erry != nil || len(x) != size || len(y) != size {
			return jwk{}, fmt.Errorf("kid %q: bad EC coordinates", k.Kid)
		}
		// ParseUncompressedPublicKey checks that the point is on the curve.
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, append(append([]byte{4}, x...), y...))
		if err != nil {
			return jwk{}, fmt.Errorf("kid %q: %w", k.Kid, err)
		}
		out.key = pub
	case "OKP":
		if k.Crv != "Ed25519" {
			return jwk{}, fmt.Errorf("kid %q: curve %q is not supported", k.Kid, k.Crv)
		}
		x, err := base64.RawURLEncoding.DecodeString(k.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return jwk{}, fmt.Errorf("kid %q: bad Ed25519 key", k.Kid)
		}
		out.key = ed25519.PublicKey(x)
	default:
		return jwk{}, nil
	}
	return out, nil
}

func b64int(s string) (*big.Int, error) {
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		return nil, errors.New("not base64url")
	}
	return new(big.Int).SetBytes(b), nil
}
