package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"
)

// runTool runs one of the model's tool calls through the session. Whatever the model can fix —
// a tool error, an unknown tool, a protocol error about the call, a call that timed out — comes
// back as an error result for the model to read; only a lost session or the end of ctx is an
// error of Ask.
func runTool(ctx context.Context, opts Options, known map[string]bool, tc api.ToolCall) (ToolCall, error) {
	name := tc.Function.Name
	args, err := json.Marshal(tc.Function.Arguments) // in the model's order
	if err != nil {
		return ToolCall{}, fmt.Errorf("tool call %s: arguments: %w", name, err)
	}
	call := ToolCall{Name: name, Arguments: args}
	if !known[name] {
		names := make([]string, 0, len(known))
		for n := range known {
			names = append(names, n)
		}
		slices.Sort(names)
		call.IsError = true
		call.Result = fmt.Sprintf("there is no tool named %q; the tools are: %s", name, strings.Join(names, ", "))
		return call, nil
	}

	cctx, cancel := context.WithTimeout(ctx, opts.CallTimeout)
	defer cancel()
	start := time.Now()
	res, err := opts.Session.CallTool(cctx, &sdk.CallToolParams{Name: name, Arguments: json.RawMessage(args)})
	opts.Logger.Debug("tool call", "tool", name, "arguments", string(args), "took", time.Since(start), "err", err)
	var werr *jsonrpc.Error
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return call, ctx.Err()
	case errors.Is(err, context.DeadlineExceeded):
		call.IsError = true
		call.Result = fmt.Sprintf("the call took longer than %s and was cancelled; ask for less", opts.CallTimeout)
		return call, nil
	case errors.As(err, &werr):
		// The server refused the request itself (e.g. arguments it could not read).
		call.IsError = true
		call.Result = werr.Message
		return call, nil
	default:
		return call, fmt.Errorf("call %s: %w", name, err)
	}
	call.IsError = res.IsError
	call.Result = capText(resultText(res), opts.MaxResultChars)
	return call, nil
}

// resultText is what a tool result says: its text content (for cairn, the JSON of the structured
// result, or the error message), else the structured content as JSON.
func resultText(res *sdk.CallToolResult) string {
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	if b.Len() == 0 && res.StructuredContent != nil {
		if j, err := json.Marshal(res.StructuredContent); err == nil {
			return string(j)
		}
	}
	return b.String()
}

// capText cuts s to at most n characters, saying how much was cut so the model can narrow the
// call rather than answer from a part it believes whole.
func capText(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	cut := 0
	for i := range s {
		if cut == n {
			rest := utf8.RuneCountInString(s[i:])
			return s[:i] + fmt.Sprintf("\n…[cut: %d more characters; ask for fewer rows or columns]", rest)
		}
		cut++
	}
	return s
}
