package client

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Arguments builds a call's arguments object from --json (set says whether it was given; "-"
// reads stdin) or from key=value pairs, in the order given. A value is read as JSON when it is
// valid JSON and as a plain string otherwise, so that sql=SELECT 1 needs no quotes.
func Arguments(jsonArg string, set bool, pairs []string, stdin io.Reader) (json.RawMessage, error) {
	if set {
		if len(pairs) > 0 {
			return nil, fmt.Errorf("give the arguments either with --json or as key=value pairs, not both (got %s)", strings.Join(pairs, " "))
		}
		raw := []byte(jsonArg)
		if jsonArg == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("--json -: read stdin: %w", err)
			}
			raw = b
		}
		raw = bytes.TrimSpace(raw)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("--json: want one JSON object like {\"sql\": \"SELECT 1\"}, got %q", Abbreviate(string(raw), 80))
		}
		return raw, nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	seen := map[string]bool{}
	for i, p := range pairs {
		key, value, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("argument %q: want key=value, e.g. sql=\"SELECT 1\" or limit=5", p)
		}
		if seen[key] {
			return nil, fmt.Errorf("argument %q given twice", key)
		}
		seen[key] = true
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		if json.Valid([]byte(value)) {
			b.WriteString(strings.TrimSpace(value))
		} else {
			v, _ := json.Marshal(value)
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// Abbreviate cuts s to n runes, marking the cut.
func Abbreviate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
