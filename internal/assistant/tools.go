package assistant

import (
	"context"
	"encoding/json"
	"fmt"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"
)

// listTools returns every tool the session offers, following the pages.
func listTools(ctx context.Context, s Session) ([]*sdk.Tool, error) {
	var all []*sdk.Tool
	params := &sdk.ListToolsParams{}
	for {
		res, err := s.ListTools(ctx, params)
		if err != nil {
			return nil, fmt.Errorf("list cairn's tools: %w", err)
		}
		all = append(all, res.Tools...)
		if res.NextCursor == "" {
			return all, nil
		}
		params = &sdk.ListToolsParams{Cursor: res.NextCursor}
	}
}

// ReadOnly reports whether a tool says it only reads (its ReadOnlyHint annotation).
func ReadOnly(t *sdk.Tool) bool { return t.Annotations != nil && t.Annotations.ReadOnlyHint }

// ollamaTools converts the tools the model may use to Ollama's tool definitions: the read-only
// ones, or all with writes allowed.
func ollamaTools(tools []*sdk.Tool, allowWrites bool) (api.Tools, error) {
	var out api.Tools
	for _, t := range tools {
		if !allowWrites && !ReadOnly(t) {
			continue
		}
		ot, err := OllamaTool(t)
		if err != nil {
			return nil, err
		}
		out = append(out, ot)
	}
	return out, nil
}

// OllamaTool converts an MCP tool to an Ollama function tool: its name, description and input
// schema as the parameters. The schema goes through JSON into Ollama's types, which keep what
// a model reads (types, descriptions, enums, required, nesting) and drop the rest
// (additionalProperties, bounds), so the prompt stays small.
func OllamaTool(t *sdk.Tool) (api.Tool, error) {
	params := api.ToolFunctionParameters{Type: "object"}
	if t.InputSchema != nil {
		b, err := json.Marshal(t.InputSchema)
		if err != nil {
			return api.Tool{}, fmt.Errorf("tool %s: input schema: %w", t.Name, err)
		}
		if err := json.Unmarshal(b, &params); err != nil {
			return api.Tool{}, fmt.Errorf("tool %s: input schema is not an object schema Ollama understands: %w", t.Name, err)
		}
		if params.Type == "" {
			params.Type = "object"
		}
	}
	if params.Properties == nil {
		// Ollama wants "properties": {} rather than null for a tool without arguments.
		params.Properties = api.NewToolPropertiesMap()
	}
	desc := t.Description
	if desc == "" {
		desc = t.Title
	}
	return api.Tool{Type: "function", Function: api.ToolFunction{Name: t.Name, Description: desc, Parameters: params}}, nil
}
