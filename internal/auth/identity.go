// Package auth decides who is calling cairn over HTTP: static bearer tokens (each with a name and
// a role) and JWTs verified against an issuer's JWKS, through the go-sdk's bearer-token
// middleware. The identity it establishes travels in the go-sdk's TokenInfo.
package auth

import (
	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
)

// Identity is who is calling and with which role (the permissions file's roles).
type Identity struct {
	// User is the token's name or the JWT's subject.
	User string
	// Role names the caller's role in the permissions file; "" when unauthenticated (stdio).
	Role string
}

// roleKey is where the role travels in TokenInfo.Extra.
const roleKey = "cairn.role"

// TokenInfo returns the go-sdk TokenInfo carrying id; the bearer middleware puts it in the
// request's context and the SDK hands it to tool handlers as req.Extra.TokenInfo.
func (id Identity) TokenInfo() *sdkauth.TokenInfo {
	return &sdkauth.TokenInfo{UserID: id.User, Extra: map[string]any{roleKey: id.Role}}
}

// FromTokenInfo reads the identity a TokenInfo carries; the zero Identity for nil.
func FromTokenInfo(ti *sdkauth.TokenInfo) Identity {
	if ti == nil {
		return Identity{}
	}
	role, _ := ti.Extra[roleKey].(string)
	return Identity{User: ti.UserID, Role: role}
}
