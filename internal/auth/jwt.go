package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/golang-jwt/jwt/v5"
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// jwtAlgs are the signature algorithms cairn accepts: asymmetric ones only (never "none" or an
// HMAC, which would let anyone who knows the public key sign).
var jwtAlgs = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// jwtVerifier checks JWTs signed by one issuer.
type jwtVerifier struct {
	issuer      string
	roleClaim   string
	defaultRole string
	parser      *jwt.Parser
	keys        *jwksCache
}

var errWrongIssuer = errors.New("wrong issuer")

// verify checks the token's signature against the issuer's key set and its claims (iss, aud,
// exp — required —, nbf and iat, with the clock skew allowed), and returns who it is for.
func (j *jwtVerifier) verify(ctx context.Context, raw string) (*sdkauth.TokenInfo, error) {
	claims := jwt.MapClaims{}
	_, err := j.parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		// Refuse a stranger's token before it can make cairn fetch keys.
		if iss, _ := claims.GetIssuer(); iss != j.issuer {
			return nil, errWrongIssuer
		}
		kid, _ := t.Header["kid"].(string)
		keys, err := j.keys.lookup(ctx, kid, t.Method.Alg())
		if err != nil {
			return nil, err
		}
		if len(keys) == 1 {
			return keys[0], nil
		}
		vks := jwt.VerificationKeySet{}
		for _, k := range keys {
			vks.Keys = append(vks.Keys, k)
		}
		return vks, nil
	})
	if err != nil {
		return nil, jwtError(err, claims)
	}
	sub, _ := claims.GetSubject()
	if sub == "" {
		return nil, fmt.Errorf("%w: the token names no subject (sub)", sdkauth.ErrInvalidToken)
	}
	exp, _ := claims.GetExpirationTime() // required by the parser, so present
	role := claimString(claims, j.roleClaim)
	if role == "" {
		role = j.defaultRole // "" refuses the call (403) in Require
	}
	ti := Identity{User: sub, Role: role, Method: MethodJWT, Issuer: j.issuer}.TokenInfo()
	ti.Expiration = exp.Time
	ti.Scopes = scopes(claims)
	return ti, nil
}

// jwtError says what was wrong with a token (never quoting it). Failing to get the issuer's keys
// is not the caller's fault and is not an invalid token (the middleware answers 500).
func jwtError(err error, claims jwt.MapClaims) error {
	invalid := func(msg string) error { return fmt.Errorf("%w: %s", sdkauth.ErrInvalidToken, msg) }
	var keys *KeysUnavailableError
	switch {
	case errors.As(err, &keys):
		return keys
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case errors.Is(err, jwt.ErrTokenMalformed):
		return invalid("malformed JWT")
	case errors.Is(err, errWrongIssuer):
		return invalid("the token is from another issuer (iss)")
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return invalid("bad signature or signing algorithm")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return invalid("cannot verify the signature: " + unwrapLast(err))
	}
	// Claims: say everything that is wrong.
	var msgs []string
	for _, c := range []struct {
		err error
		msg string
	}{
		{jwt.ErrTokenExpired, "the token has expired (exp)"},
		{jwt.ErrTokenNotValidYet, "the token is not valid yet (nbf)"},
		{jwt.ErrTokenUsedBeforeIssued, "the token was issued in the future (iat)"},
		{jwt.ErrTokenInvalidAudience, "the token is for another audience (aud)"},
		{jwt.ErrTokenInvalidIssuer, "the token is from another issuer (iss)"},
	} {
		if errors.Is(err, c.err) {
			msgs = append(msgs, c.msg)
		}
	}
	if errors.Is(err, jwt.ErrTokenRequiredClaimMissing) {
		for _, c := range []string{"exp", "aud", "iss"} {
			if _, ok := claims[c]; !ok {
				msgs = append(msgs, "the token has no "+c+" claim")
			}
		}
	}
	if len(msgs) == 0 {
		msgs = append(msgs, "the token's claims are not valid (a claim of the wrong type?)")
	}
	return invalid(strings.Join(msgs, "; "))
}

// unwrapLast is the message of the innermost cause golang-jwt wrapped (the key function's error).
func unwrapLast(err error) string {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		if errs := j.Unwrap(); len(errs) > 0 {
			return errs[len(errs)-1].Error()
		}
	}
	return err.Error()
}

// claimString reads the claim name: a top-level claim of that name (which may contain dots, as
// URL-named claims do), else a dotted path into nested objects ("realm_access.roles"). A list
// gives its first string.
func claimString(claims map[string]any, name string) string {
	v, ok := claims[name]
	if !ok && strings.Contains(name, ".") {
		var cur any = claims
		for _, part := range strings.Split(name, ".") {
			m, isMap := cur.(map[string]any)
			if !isMap {
				cur = nil
				break
			}
			cur = m[part]
		}
		v = cur
	}
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case []any:
		for _, e := range v {
			if s, isStr := e.(string); isStr && strings.TrimSpace(s) != "" {
				return strings.TrimSpace(s)
			}
		}
	}
	return ""
}

// scopes reads OAuth scopes: "scope" as a space-separated string (RFC 8693, RFC 9068), or "scp"
// as a list or string (Azure AD, Okta).
func scopes(claims map[string]any) []string {
	var out []string
	add := func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, strings.Fields(v)...)
		case []any:
			for _, e := range v {
				if s, ok := e.(string); ok && s != "" {
					out = append(out, s)
				}
			}
		}
	}
	add(claims["scope"])
	add(claims["scp"])
	return out
}
