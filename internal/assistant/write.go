package assistant

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Write writes the answer as indented JSON, or as the tool calls followed by the answer text;
// withText false leaves the text out, for a failed question that has none but whose calls are
// worth seeing.
func (a *Answer) Write(w io.Writer, asJSON, withText bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	writeToolCalls(w, a.ToolCalls)
	if !withText {
		return nil
	}
	if len(a.ToolCalls) > 0 {
		fmt.Fprintln(w)
	}
	_, err := fmt.Fprintln(w, strings.TrimSpace(a.Answer))
	return err
}

// writeToolCalls writes each call with its arguments, whether it succeeded, and the start of its
// result on one line.
func writeToolCalls(w io.Writer, calls []ToolCall) {
	for _, tc := range calls {
		fmt.Fprintf(w, "→ %s %s\n", tc.Name, tc.Arguments)
		status := "ok"
		if tc.IsError {
			status = "error"
		}
		fmt.Fprintf(w, "  %s: %s\n", status, abbreviate(strings.Join(strings.Fields(tc.Result), " "), 160))
	}
}

// abbreviate cuts s to n runes, marking the cut.
func abbreviate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
