// Package auth decides who is calling cairn over HTTP: static bearer tokens (each with a name and
// a role) and JWTs verified against an issuer's JWKS, through the go-sdk's bearer-token
// middleware. The identity it establishes travels in the go-sdk's TokenInfo.
package auth

import (
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// How a caller authenticated.
const (
	// MethodToken is a static bearer token the operator configured.
	MethodToken = "token"
	// MethodJWT is a JWT from the configured issuer.
	MethodJWT = "jwt"
)

// Identity is who is calling and with which role (the permissions file's roles).
type Identity struct {
	// User is the token's name or the JWT's subject.
	User string
	// Role names the caller's role in the permissions file; "" when unauthenticated (stdio).
	Role string
	// Method is how the caller authenticated: MethodToken or MethodJWT; "" when unauthenticated.
	Method string
	// Issuer is the JWT's issuer; "" for static tokens.
	Issuer string
}

// Principal names who the caller is, whatever role it holds: the method, the issuer and the
// user. A static token named "adm" and a JWT whose subject is "adm" are different principals.
func (id Identity) Principal() string {
	switch id.Method {
	case MethodJWT:
		return "jwt:" + id.Issuer + "#" + id.User
	case "":
		return id.User
	}
	return id.Method + ":" + id.User
}

// Where the parts of an Identity beyond the user travel in TokenInfo.Extra.
const (
	roleKey   = "cairn.role"
	methodKey = "cairn.method"
	issuerKey = "cairn.issuer"
)

// TokenInfo returns the go-sdk TokenInfo carrying id; the bearer middleware puts it in the
// request's context and the SDK hands it to tool handlers as req.Extra.TokenInfo.
func (id Identity) TokenInfo() *sdkauth.TokenInfo {
	return &sdkauth.TokenInfo{UserID: id.User, Extra: map[string]any{roleKey: id.Role, methodKey: id.Method, issuerKey: id.Issuer}}
}

// FromTokenInfo reads the identity a TokenInfo carries; the zero Identity for nil.
func FromTokenInfo(ti *sdkauth.TokenInfo) Identity {
	if ti == nil {
		return Identity{}
	}
	id := Identity{User: ti.UserID}
	id.Role, _ = ti.Extra[roleKey].(string)
	id.Method, _ = ti.Extra[methodKey].(string)
	id.Issuer, _ = ti.Extra[issuerKey].(string)
	return id
}
