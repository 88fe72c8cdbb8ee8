// Package authtest is an in-process OAuth issuer for tests: it serves an OpenID discovery
// document and a JSON Web Key Set over HTTP, and signs JWTs with its keys.
package authtest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Key is a signing key of the issuer.
type Key struct {
	Kid  string
	Alg  string // RS256, ES256 or EdDSA
	priv crypto.Signer
}

// NewKey generates a key for alg (RS256, ES256 or EdDSA).
func NewKey(t testing.TB, alg, kid string) *Key {
	t.Helper()
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case "RS256":
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case "ES256":
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		t.Fatalf("authtest: unsupported alg %s", alg)
	}
	if err != nil {
		t.Fatal(err)
	}
	return &Key{Kid: kid, Alg: alg, priv: priv}
}

// JWK is the key's public half as a JSON Web Key.
func (k *Key) JWK() map[string]any {
	b64 := base64.RawURLEncoding.EncodeToString
	m := map[string]any{"kid": k.Kid, "alg": k.Alg, "use": "sig"}
	switch pub := k.priv.Public().(type) {
	case *rsa.PublicKey:
		m["kty"], m["n"], m["e"] = "RSA", b64(pub.N.Bytes()), b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, _ := pub.Bytes() // 0x04 || X || Y
		m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64(raw[1:33]), b64(raw[33:])
	case ed25519.PublicKey:
		m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(pub)
	}
	return m
}

// Issuer is an in-process issuer: its URL serves /.well-known/openid-configuration (with
// jwks_uri URL+"/keys") and /keys.
type Issuer struct {
	URL string
	srv *httptest.Server

	mu        sync.Mutex
	published []*Key
	discovery bool

	jwksHits      atomic.Int64
	discoveryHits atomic.Int64
}

// NewIssuer starts an issuer publishing keys; it stops when the test ends.
func NewIssuer(t testing.TB, keys ...*Key) *Issuer {
	t.Helper()
	iss := &Issuer{published: keys, discovery: true}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		iss.discoveryHits.Add(1)
		iss.mu.Lock()
		on := iss.discovery
		iss.mu.Unlock()
		if !on {
			http.NotFound(w, r)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss.URL, "jwks_uri": iss.URL + "/keys"})
	})
	serveKeys := func(w http.ResponseWriter, _ *http.Request) {
		iss.jwksHits.Add(1)
		iss.mu.Lock()
		set := []any{}
		for _, k := range iss.published {
			set = append(set, k.JWK())
		}
		iss.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": set})
	}
	mux.HandleFunc("GET /keys", serveKeys)
	mux.HandleFunc("GET /.well-known/jwks.json", serveKeys)
	iss.srv = httptest.NewServer(mux)
	iss.URL = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

// Publish replaces the published key set (a rotation).
func (i *Issuer) Publish(keys ...*Key) {
	i.mu.Lock()
	i.published = keys
	i.mu.Unlock()
}

// NoDiscovery makes the discovery document answer 404, so that verifiers fall back to
// <issuer>/.well-known/jwks.json.
func (i *Issuer) NoDiscovery() {
	i.mu.Lock()
	i.discovery = false
	i.mu.Unlock()
}

// JWKSRequests is how many times the key set was fetched.
func (i *Issuer) JWKSRequests() int { return int(i.jwksHits.Load()) }

// DiscoveryRequests is how many times the discovery document was fetched.
func (i *Issuer) DiscoveryRequests() int { return int(i.discoveryHits.Load()) }

// Claims are valid claims for sub and aud from this issuer: issued now, expiring in 5 minutes.
func (i *Issuer) Claims(sub, aud string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{
		"iss": i.URL, "sub": sub, "aud": aud,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix(),
	}
}

// Sign makes a JWT of claims signed with k (its kid in the header).
func Sign(t testing.TB, k *Key, claims jwt.MapClaims) string {
	t.Helper()
	var m jwt.SigningMethod
	switch k.Alg {
	case "RS256":
		m = jwt.SigningMethodRS256
	case "ES256":
		m = jwt.SigningMethodES256
	case "EdDSA":
		m = jwt.SigningMethodEdDSA
	}
	tok := jwt.NewWithClaims(m, claims)
	if k.Kid != "" {
		tok.Header["kid"] = k.Kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
