package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/names"
)

// AllTools lists every tool of the session, following the list's pages.
func AllTools(ctx context.Context, cs *sdk.ClientSession) ([]*sdk.Tool, error) {
	var tools []*sdk.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// WriteTools writes one line per tool: its name and title (or the first line of its
// description), marking the tools that write.
func WriteTools(w io.Writer, tools []*sdk.Tool) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, t := range tools {
		desc := t.Title
		if desc == "" {
			desc, _, _ = strings.Cut(t.Description, "\n")
		}
		if t.Annotations == nil || !t.Annotations.ReadOnlyHint {
			desc += " (writes)"
		}
		fmt.Fprintf(tw, "%s\t%s\n", t.Name, desc)
	}
	return tw.Flush()
}

// UnknownTool says that there is no tool named name, suggests the closest name, and lists them
// all.
func UnknownTool(name string, tools []*sdk.Tool) string {
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	msg := fmt.Sprintf("no tool named %q", name)
	if s := Closest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg + "\ntools: " + strings.Join(names, ", ") + "\n(`cairn call --list` describes them)"
}

// Closest returns the candidate nearest to s by edit distance (up to a third of its length),
// else the shortest candidate containing it, else "": a typo and a fragment both find the name.
func Closest(s string, candidates []string) string {
	s = strings.ToLower(s)
	best, bestD := "", len(s)/3+1
	for _, n := range candidates {
		if d := names.EditDistance(s, n, bestD); d < bestD {
			best, bestD = n, d
		}
	}
	if best != "" || len(s) < 3 {
		return best
	}
	for _, n := range candidates {
		if strings.Contains(n, s) && (best == "" || len(n) < len(best)) {
			best = n
		}
	}
	return best
}

// Output is what `cairn call` prints of a result: the structured result as indented JSON —
// from the text content when that is the same JSON, which keeps the server's key order and exact
// digits — else the text.
func Output(res *sdk.CallToolResult) []byte {
	var text strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			text.WriteString(tc.Text)
		}
	}
	if res.StructuredContent == nil || res.IsError {
		return []byte(text.String())
	}
	var out bytes.Buffer
	if sameJSON([]byte(text.String()), res.StructuredContent) && json.Indent(&out, []byte(text.String()), "", "  ") == nil {
		return out.Bytes()
	}
	b, err := json.MarshalIndent(res.StructuredContent, "", "  ")
	if err != nil {
		return []byte(text.String())
	}
	return b
}

// sameJSON reports whether text is the JSON encoding of v (as decoded by the client).
func sameJSON(text []byte, v any) bool {
	var a, b any
	if json.Unmarshal(text, &a) != nil {
		return false
	}
	j, err := json.Marshal(v)
	if err != nil || json.Unmarshal(j, &b) != nil {
		return false
	}
	return reflect.DeepEqual(a, b)
}
