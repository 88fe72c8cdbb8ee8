package mcp

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/google/jsonschema-go/jsonschema"
)

// Every tool's input and output schema is inferred here, from the Go type of its arguments or
// result, and put in the form the MCP specification requires and strict clients (the TypeScript
// SDK, the Inspector) enforce: they reject the whole tool list for one schema that breaks it.
//
//   - The schema is an object at the top. A handler that returns a pointer would infer to
//     ["null", "object"]; the SDK sends a nil result as the element's zero value, so the
//     element's schema is the truth.
//   - No subschema is the boolean schema true, which is what "any JSON value" (json.RawMessage,
//     any) infers to: a property says so as an object, {"description": "any JSON value"}, and an
//     unconstrained array item or map value is left out, which means the same.
//   - additionalProperties: false stays on argument objects: a misspelt argument is refused, not
//     silently ignored. An argument's type is its value's, without "null": an optional argument
//     sent as null counts as not sent (args.go), a required one must have a value.
//   - A result's schema says that it is an object, and no more. The tool list is read into the
//     context of every conversation; a model reads each result itself, JSON whose keys say
//     what they hold, and the README lists every tool's result keys. Inferred in full, the
//     result schemas were 40% of the list; naming just the keys every result has, 10% of
//     what was left.

// anyValue describes a property that takes any JSON value when its field has no description.
const anyValue = "any JSON value"

// mustSchema infers the schema of a tool's arguments from a Go type (see above). It panics on a
// type that has none, a programming error every test catches.
func mustSchema[T any]() *jsonschema.Schema {
	sc, err := toolSchema(reflect.TypeFor[T]())
	if err != nil {
		panic(err)
	}
	noNulls(sc)
	return sc
}

// resultSchema is the schema of a tool's result (see above). It panics, as mustSchema does, on a
// Go type that does not encode as an object.
func resultSchema[T any]() *jsonschema.Schema {
	// What inference would make an object, without inferring the whole schema at every start.
	t := reflect.TypeFor[T]()
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct && (t.Kind() != reflect.Map || t.Key().Kind() != reflect.String) {
		panic(fmt.Sprintf("result of type %s: a tool's result must be a JSON object", t))
	}
	return &jsonschema.Schema{Type: "object"}
}

// toolSchema infers the schema of a tool's arguments or result from its Go type.
func toolSchema(t reflect.Type) (*jsonschema.Schema, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	sc, err := jsonschema.ForType(t, &jsonschema.ForOptions{TypeSchemas: map[reflect.Type]*jsonschema.Schema{
		// Inference alone would make it an array of bytes.
		reflect.TypeFor[json.RawMessage](): {},
	}})
	if err != nil {
		return nil, fmt.Errorf("schema for %s: %w", t, err)
	}
	if sc.Type != "object" {
		return nil, fmt.Errorf("schema for %s: a tool's arguments and result must be a JSON object, not %s", t, sc.Type)
	}
	noTrueSchemas(sc)
	return sc, nil
}

// noTrueSchemas rewrites, below sc, every subschema that would encode as the boolean true.
func noTrueSchemas(sc *jsonschema.Schema) {
	for _, p := range sc.Properties {
		if isTrue(p) {
			p.Description = anyValue
			continue
		}
		noTrueSchemas(p)
	}
	if sc.Items != nil {
		if isTrue(sc.Items) {
			sc.Items = nil
		} else {
			noTrueSchemas(sc.Items)
		}
	}
	if sc.AdditionalProperties != nil && !isFalse(sc.AdditionalProperties) {
		if isTrue(sc.AdditionalProperties) {
			sc.AdditionalProperties = nil
		} else {
			noTrueSchemas(sc.AdditionalProperties)
		}
	}
}

// isTrue reports whether s accepts every value and so encodes as true.
func isTrue(s *jsonschema.Schema) bool {
	return isBool(s, "true")
}

// isFalse reports whether s accepts no value (jsonschema encodes it as false).
func isFalse(s *jsonschema.Schema) bool {
	return isBool(s, "false")
}

func isBool(s *jsonschema.Schema, v string) bool {
	if s.Type != "" || s.Types != nil || s.Properties != nil || s.Items != nil || s.Description != "" {
		return false // not {} nor {"not": {}}; encoding it to be sure costs a fifth of a start
	}
	b, err := json.Marshal(s)
	return err == nil && string(b) == v
}

// noNulls takes "null" out of every ["null", T] below sc, which Go slices and pointers infer to.
func noNulls(sc *jsonschema.Schema) {
	if len(sc.Types) == 2 && sc.Types[0] == "null" {
		sc.Type, sc.Types = sc.Types[1], nil
	}
	for _, p := range sc.Properties {
		noNulls(p)
	}
	if sc.Items != nil {
		noNulls(sc.Items)
	}
	if sc.AdditionalProperties != nil && !isFalse(sc.AdditionalProperties) {
		noNulls(sc.AdditionalProperties)
	}
}
