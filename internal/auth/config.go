package auth

import (
	"log/slog"

	"github.com/cairn-mcp/cairn/internal/config"
)

// TokenName is the name of the token given with --auth-token.
const TokenName = "token"

// OptionsFromConfig gathers the authentication settings: the static tokens of --auth-token,
// CAIRN_AUTH_TOKENS and --auth-tokens-file (reading the file), and the JWT settings.
func OptionsFromConfig(c *config.Config, log *slog.Logger) (Options, error) {
	var toks []StaticToken
	if c.AuthToken != "" {
		role := c.AuthTokenRole
		if role == "" {
			role = config.DefaultAuthTokenRole
		}
		toks = append(toks, StaticToken{Name: TokenName, Role: role, Token: c.AuthToken})
	}
	if c.AuthTokens != "" {
		ts, err := ParseTokens(c.AuthTokens, true, "--auth-tokens (CAIRN_AUTH_TOKENS)")
		if err != nil {
			return Options{}, err
		}
		toks = append(toks, ts...)
	}
	if c.AuthTokensFile != "" {
		ts, err := ReadTokensFile(c.AuthTokensFile)
		if err != nil {
			return Options{}, err
		}
		toks = append(toks, ts...)
	}
	return Options{
		Tokens:         toks,
		Issuer:         c.AuthIssuer,
		Audiences:      c.AuthAudience,
		JWKSURL:        c.AuthJWKSURL,
		RoleClaim:      c.AuthRoleClaim,
		DefaultRole:    c.AuthDefaultRole,
		ClockSkew:      c.AuthClockSkew,
		RequiredScopes: c.AuthRequiredScopes,
		PublicURL:      c.PublicURL,
		Logger:         log,
	}, nil
}

// FromConfig builds the Verifier the configuration describes.
func FromConfig(c *config.Config, log *slog.Logger) (*Verifier, error) {
	o, err := OptionsFromConfig(c, log)
	if err != nil {
		return nil, err
	}
	return New(o)
}
