package mcp

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
)

// The validator runs only for schemas that say more than the walk checks, and then still
// refuses what breaks those extra rules.
func TestValidatorOnlyWhereTheWalkFallsShort(t *testing.T) {
	ptr := func(f float64) *float64 { return &f }
	plain := &jsonschema.Schema{Type: "object", Required: []string{"sql"}, AdditionalProperties: &jsonschema.Schema{Not: &jsonschema.Schema{}},
		Properties: map[string]*jsonschema.Schema{"sql": {Type: "string", Description: "one statement"},
			"params": {Type: "array", Items: &jsonschema.Schema{}}}}
	bounded := &jsonschema.Schema{Type: "object",
		Properties: map[string]*jsonschema.Schema{"limit": {Type: "integer", Maximum: ptr(10)}}}
	nested := &jsonschema.Schema{Type: "object",
		Properties: map[string]*jsonschema.Schema{"items": {Type: "array", Items: &jsonschema.Schema{Type: "string", Pattern: "^a"}}}}
	for _, c := range []struct {
		name   string
		sc     *jsonschema.Schema
		walked bool
	}{{"plain", plain, true}, {"bounded", bounded, false}, {"nested", nested, false}} {
		if got := walked(c.sc); got != c.walked {
			t.Errorf("%s: walked = %v, want %v", c.name, got, c.walked)
		}
	}
	resolved, err := bounded.Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = checkArgs("t", argSpec{schema: bounded, resolved: resolved}, json.RawMessage(`{"limit": 11}`))
	if err == nil || !strings.Contains(err.Error(), "limit") {
		t.Errorf("a limit over the maximum: %v", err)
	}
}
