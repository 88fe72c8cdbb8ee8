package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/names"
)

// Every tool's arguments are checked here, against its input schema, before the tool sees them,
// so that every tool answers a wrong argument in one voice: which argument is wrong and why,
// the closest name it takes ("did you mean"), and the arguments it takes. Typed tools would
// otherwise answer with the SDK's validator text and raw tools with decodeArgs'.
//
// One leniency: an optional argument sent as null is taken as not sent (many clients send null
// for every optional parameter they leave out), unless its schema accepts null itself.

// argSpec is what the check needs of a tool's input schema.
type argSpec struct {
	schema   *jsonschema.Schema
	resolved *jsonschema.Resolved // nil when checkValue checks all the schema says
}

// recordArgs remembers a tool's input schema for the argument check. It runs while New
// registers the tools, before any call, so the map needs no lock.
func (s *Server) recordArgs(tool *sdk.Tool) {
	sc, ok := tool.InputSchema.(*jsonschema.Schema)
	if !ok {
		panic(fmt.Sprintf("tool %s: input schema is a %T, not a *jsonschema.Schema", tool.Name, tool.InputSchema))
	}
	spec := argSpec{schema: sc}
	if !walked(sc) {
		resolved, err := sc.Resolve(nil)
		if err != nil {
			panic(fmt.Sprintf("tool %s: input schema: %v", tool.Name, err)) // a programming error, caught by every test
		}
		spec.resolved = resolved
	}
	if s.args == nil {
		s.args = map[string]argSpec{}
	}
	s.args[tool.Name] = spec
}

// walkedFields are the schema fields checkValue checks, and those that check nothing.
var walkedFields = map[string]bool{"Type": true, "Types": true, "Properties": true, "PropertyOrder": true, "Required": true,
	"AdditionalProperties": true, "Items": true, "Description": true, "Title": true, "Default": true, "Examples": true}

// walked reports whether checkValue checks everything sc says, so that the validator, which
// would decode the arguments a second time, has nothing to add (for a call of query it was a
// twentieth of the server's CPU).
func walked(sc *jsonschema.Schema) bool {
	if sc == nil {
		return true
	}
	v := reflect.ValueOf(sc).Elem()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() && !walkedFields[f.Name] && !v.Field(i).IsZero() {
			return isFalse(sc) // additionalProperties: false is {"not": {}}
		}
	}
	for _, p := range sc.Properties {
		if !walked(p) {
			return false
		}
	}
	return walked(sc.Items) && walked(sc.AdditionalProperties)
}

// addRawTool registers a tool whose handler decodes its own arguments (rawHandler).
func (s *Server) addRawTool(tool *sdk.Tool, h sdk.ToolHandler) {
	s.recordArgs(tool)
	s.srv.AddTool(tool, h)
}

// checkArguments is the receiving middleware that checks every tools/call's arguments. A wrong
// argument is a tool error (the caller's to fix), not a protocol error.
func (s *Server) checkArguments(next sdk.MethodHandler) sdk.MethodHandler {
	return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
		call, ok := req.(*sdk.CallToolRequest)
		if !ok || call.Params == nil {
			return next(ctx, method, req)
		}
		spec, known := s.args[call.Params.Name]
		if !known {
			return next(ctx, method, req) // the SDK says there is no such tool
		}
		args, err := checkArgs(call.Params.Name, spec, call.Params.Arguments)
		if err != nil {
			s.logCallError(ctx, call.Params.Name, err)
			return toolError(err), nil
		}
		call.Params.Arguments = args
		return next(ctx, method, req)
	}
}

// checkArgs checks a tool call's arguments and returns them with null optional ones left out.
func checkArgs(tool string, spec argSpec, raw json.RawMessage) (json.RawMessage, error) {
	if t := bytes.TrimSpace(raw); len(t) == 0 || bytes.Equal(t, []byte("null")) {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, argError(tool, spec.schema, "arguments are not valid JSON: %v", err)
	}
	obj, isObj := v.(map[string]any)
	if !isObj {
		return nil, argError(tool, spec.schema, "arguments must be a JSON object of named arguments, not %s", describe(v))
	}
	dropped, err := checkValue("", spec.schema, obj, tool, spec.schema)
	if err != nil {
		return nil, err
	}
	if dropped {
		if raw, err = json.Marshal(obj); err != nil {
			return nil, fmt.Errorf("re-encode the arguments of %s: %w", tool, err)
		}
	}
	if spec.resolved == nil {
		return raw, nil
	}
	// What the walk above does not look at (bounds, formats) the validator still does; it
	// wants numbers as float64, not json.Number.
	var plain any
	if err := json.Unmarshal(raw, &plain); err != nil {
		return nil, fmt.Errorf("decode the arguments of %s: %w", tool, err)
	}
	if err := spec.resolved.Validate(plain); err != nil {
		return nil, argError(tool, spec.schema, "arguments: %v", err)
	}
	return raw, nil
}

// checkValue checks v against sc at path ("" for the arguments themselves) and reports whether
// it dropped a null optional argument. owner and osc are the nearest object holding v (the tool
// and its arguments at the top), whose arguments an error lists.
func checkValue(path string, sc *jsonschema.Schema, v any, owner string, osc *jsonschema.Schema) (bool, error) {
	if !typeOK(sc, v) {
		if path == "" {
			return false, argError(owner, osc, "arguments must be %s, not %s", typeName(sc), describe(v))
		}
		return false, argError(owner, osc, "argument %q must be %s, not %s", path, typeName(sc), describe(v))
	}
	dropped := false
	check := func(path string, sc *jsonschema.Schema, v any, owner string, osc *jsonschema.Schema) error {
		d, err := checkValue(path, sc, v, owner, osc)
		dropped = dropped || d
		return err
	}
	switch x := v.(type) {
	case map[string]any:
		if path != "" && len(sc.Properties) > 0 {
			owner, osc = path, sc
		}
		order := propertyOrder(sc)
		extra := sc.AdditionalProperties
		for _, k := range slices.Sorted(maps.Keys(x)) {
			if _, ok := sc.Properties[k]; ok {
				continue
			}
			switch {
			case extra != nil && isFalse(extra):
				msg := fmt.Sprintf("unknown argument %q", k)
				if path != "" {
					msg += " in " + path
				}
				if c := names.Closest(k, order); c != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", c)
				}
				return false, argError(owner, osc, "%s", msg)
			case extra != nil:
				if err := check(join(path, k), extra, x[k], owner, osc); err != nil {
					return false, err
				}
			}
		}
		for _, k := range order {
			p := sc.Properties[k]
			val, present := x[k]
			if present && val == nil && !slices.Contains(sc.Required, k) && !typeOK(p, nil) {
				delete(x, k)
				dropped, present = true, false
			}
			if !present {
				if slices.Contains(sc.Required, k) {
					msg := fmt.Sprintf("missing argument %q", join(path, k))
					if p.Description != "" {
						msg += " (" + p.Description + ")"
					}
					return false, argError(owner, osc, "%s", msg)
				}
				continue
			}
			if err := check(join(path, k), p, val, owner, osc); err != nil {
				return false, err
			}
		}
	case []any:
		if sc.Items != nil {
			for i, item := range x {
				if err := check(fmt.Sprintf("%s[%d]", path, i), sc.Items, item, owner, osc); err != nil {
					return false, err
				}
			}
		}
	}
	return dropped, nil
}

// argError is a tool error about the arguments of owner (a tool, or an argument holding an
// object) that ends with the arguments owner's schema sc takes.
func argError(owner string, sc *jsonschema.Schema, format string, args ...any) error {
	return &callerr.Input{Msg: fmt.Sprintf(format, args...) + "; " + owner + " " + takes(sc)}
}

// takes says which arguments an object schema takes: "takes sql and optionally params".
func takes(sc *jsonschema.Schema) string {
	var req, opt []string
	for _, k := range propertyOrder(sc) {
		if slices.Contains(sc.Required, k) {
			req = append(req, k)
		} else {
			opt = append(opt, k)
		}
	}
	switch {
	case len(req) == 0 && len(opt) == 0:
		return "takes no arguments"
	case len(opt) == 0:
		return "takes " + strings.Join(req, ", ")
	case len(req) == 0:
		return "takes optionally " + strings.Join(opt, ", ")
	}
	return "takes " + strings.Join(req, ", ") + " and optionally " + strings.Join(opt, ", ")
}

// propertyOrder is the order of an object's properties: the Go struct's, then any others.
func propertyOrder(sc *jsonschema.Schema) []string {
	order := slices.Clone(sc.PropertyOrder)
	for _, k := range slices.Sorted(maps.Keys(sc.Properties)) {
		if !slices.Contains(order, k) {
			order = append(order, k)
		}
	}
	return order
}

// types are the JSON types a schema accepts; none means any.
func types(sc *jsonschema.Schema) []string {
	if sc.Type != "" {
		return []string{sc.Type}
	}
	return sc.Types
}

// typeOK reports whether v (decoded with UseNumber) has a type sc accepts.
func typeOK(sc *jsonschema.Schema, v any) bool {
	ts := types(sc)
	if len(ts) == 0 {
		return true
	}
	for _, t := range ts {
		switch x := v.(type) {
		case nil:
			if t == "null" {
				return true
			}
		case bool:
			if t == "boolean" {
				return true
			}
		case string:
			if t == "string" {
				return true
			}
		case json.Number:
			if t == "number" {
				return true
			}
			// A whole number that fits the Go integer it decodes into; 1.0 and 1e3 do not decode.
			if _, err := strconv.ParseInt(x.String(), 10, 64); t == "integer" && err == nil {
				return true
			}
		case []any:
			if t == "array" {
				return true
			}
		case map[string]any:
			if t == "object" {
				return true
			}
		}
	}
	return false
}

// typeName says what a schema accepts: "a string", "a whole number or null".
func typeName(sc *jsonschema.Schema) string {
	var out []string
	for _, t := range types(sc) {
		switch t {
		case "integer":
			out = append(out, "a whole number")
		case "number":
			out = append(out, "a number")
		case "string":
			out = append(out, "a string")
		case "boolean":
			out = append(out, "a boolean (true or false)")
		case "array":
			out = append(out, "an array")
		case "object":
			out = append(out, "an object")
		case "null":
			out = append(out, "null")
		}
	}
	return strings.Join(out, " or ")
}

// describe names a JSON value for an error: the string "yes", the number 1.5, an array.
func describe(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(x)
	case string:
		if len(x) > 40 {
			return "a string"
		}
		return "the string " + strconv.Quote(x)
	case json.Number:
		return "the number " + x.String()
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
