package auth

import (
	"net/http"
	"strings"

	sdkauth "github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// MetadataPath is where the protected resource metadata (RFC 9728) is served; the metadata of
// the endpoint /mcp is also at MetadataPath+"/mcp", and of /sse at MetadataPath+"/sse".
const MetadataPath = "/.well-known/oauth-protected-resource"

// base is the URL cairn is reached at: --public-url, else the request's scheme and Host.
func (v *Verifier) base(r *http.Request) (origin, path string) {
	if v.public != nil {
		return v.public.Scheme + "://" + v.public.Host, v.public.Path
	}
	scheme := "http"
	if r != nil && (r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https")) {
		scheme = "https"
	}
	host := ""
	if r != nil {
		host = r.Host
	}
	return scheme + "://" + host, ""
}

// resource is the URL of an MCP endpoint ("/mcp" or "/sse"): the resource a token is for.
func (v *Verifier) resource(r *http.Request, endpoint string) string {
	origin, path := v.base(r)
	return origin + path + endpoint
}

// MetadataURL is the URL of the protected resource metadata for the endpoint r asks for (RFC
// 9728 §3.1: the well-known segment goes between the host and the resource's path); for paths
// other than /mcp and /sse (/metrics), the root document, which describes /mcp.
func (v *Verifier) MetadataURL(r *http.Request) string {
	origin, path := v.base(r)
	switch r.URL.Path {
	case "/mcp", "/sse":
		return origin + MetadataPath + path + r.URL.Path
	}
	return origin + MetadataPath + path
}

// MetadataHandler serves the protected resource metadata at MetadataPath and below it: the
// resource (cairn's /sse for a path ending in /sse, else its /mcp), the issuer as the
// authorization server, bearer tokens in the header, and the required scopes. Nil when no
// issuer is configured (static tokens need no discovery).
func (v *Verifier) MetadataHandler() http.Handler {
	if v.Issuer() == "" {
		return nil
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		endpoint := "/mcp"
		if strings.HasSuffix(r.URL.Path, "/sse") {
			endpoint = "/sse"
		}
		sdkauth.ProtectedResourceMetadataHandler(&oauthex.ProtectedResourceMetadata{
			Resource:               v.resource(r, endpoint),
			AuthorizationServers:   []string{v.issuer},
			BearerMethodsSupported: []string{"header"},
			ScopesSupported:        v.scopes,
			ResourceName:           "cairn",
		}).ServeHTTP(w, r)
	})
}
