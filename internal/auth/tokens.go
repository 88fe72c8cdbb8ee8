package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"os"
	"strings"
)

// StaticToken is a bearer token the operator configured: whoever presents Token is Name, with
// Role.
type StaticToken struct {
	Name  string
	Role  string
	Token string
}

// ParseTokens reads static tokens written as name:role:token. In a file (list false) there is
// one per line, and blank lines and lines starting with # are skipped; in a list (list true, as
// CAIRN_AUTH_TOKENS has them) the entries are separated by commas or newlines. The token is
// everything after the second colon, so it may itself contain colons. source names where the
// text came from, for errors, which never quote a token.
func ParseTokens(text string, list bool, source string) ([]StaticToken, error) {
	var out []StaticToken
	unit := "line"
	items := strings.Split(text, "\n")
	if list {
		unit = "entry"
		items = strings.FieldsFunc(text, func(r rune) bool { return r == ',' || r == '\n' })
	}
	for i, item := range items {
		item = strings.TrimSpace(item)
		if item == "" || strings.HasPrefix(item, "#") {
			continue
		}
		where := fmt.Sprintf("%s: %s %d", source, unit, i+1)
		parts := strings.SplitN(item, ":", 3)
		if len(parts) != 3 {
			return nil, fmt.Errorf("%s: want name:role:token", where)
		}
		t := StaticToken{Name: strings.TrimSpace(parts[0]), Role: strings.TrimSpace(parts[1]), Token: strings.TrimSpace(parts[2])}
		switch {
		case t.Name == "" || strings.ContainsAny(t.Name, " \t"):
			return nil, fmt.Errorf("%s: the name must be one word (want name:role:token)", where)
		case t.Role == "" || strings.ContainsAny(t.Role, " \t"):
			return nil, fmt.Errorf("%s (%s): the role must be one word (want name:role:token)", where, t.Name)
		case t.Token == "":
			return nil, fmt.Errorf("%s (%s): the token is empty (want name:role:token)", where, t.Name)
		case strings.ContainsAny(t.Token, " \t"):
			// The Authorization header is split on white space: such a token could never match.
			return nil, fmt.Errorf("%s (%s): the token contains white space", where, t.Name)
		}
		out = append(out, t)
	}
	return out, nil
}

// ReadTokensFile reads a token file: lines name:role:token, # comments.
func ReadTokensFile(path string) ([]StaticToken, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read --auth-tokens-file: %w", err)
	}
	toks, err := ParseTokens(string(b), false, path)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, fmt.Errorf("--auth-tokens-file %s lists no tokens: write one name:role:token per line", path)
	}
	return toks, nil
}

// staticSet checks a presented token against every configured one in constant time.
type staticSet struct {
	ids     []Identity
	digests [][sha256.Size]byte
}

func newStaticSet(toks []StaticToken) (*staticSet, error) {
	s := &staticSet{}
	names := map[string]bool{}
	digests := map[[sha256.Size]byte]string{}
	for _, t := range toks {
		if t.Name == "" || t.Role == "" || t.Token == "" {
			return nil, fmt.Errorf("static token %q: name, role and token are all required", t.Name)
		}
		if names[t.Name] {
			return nil, fmt.Errorf("static token name %q is used twice: each token needs a name of its own", t.Name)
		}
		names[t.Name] = true
		d := sha256.Sum256([]byte(t.Token))
		if other, dup := digests[d]; dup {
			return nil, fmt.Errorf("static tokens %q and %q are the same token: give each its own", other, t.Name)
		}
		digests[d] = t.Name
		s.ids = append(s.ids, Identity{User: t.Name, Role: t.Role, Method: MethodToken})
		s.digests = append(s.digests, d)
	}
	return s, nil
}

// lookup returns the identity of the token that matches got. It compares SHA-256 digests (so
// the time taken does not depend on the tokens' lengths) against every configured token,
// without stopping at a match, so neither whether nor which token matched shows in the timing.
func (s *staticSet) lookup(got string) (Identity, bool) {
	d := sha256.Sum256([]byte(got))
	match := -1
	for i := range s.digests {
		eq := subtle.ConstantTimeCompare(d[:], s.digests[i][:])
		match = subtle.ConstantTimeSelect(eq, i, match)
	}
	if match < 0 {
		return Identity{}, false
	}
	return s.ids[match], true
}
