package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/internal/config"
)

// toolListSize is what tools/list costs a client with one choice of --toolsets: every
// conversation carries the list in its model's context.
type toolListSize struct {
	toolsets string // "all" or one toolset
	tools    int
	bytes    int // the JSON-RPC response as sent over stdio
}

// toolListSizes measures the tools/list answer of `cairn serve` for each toolset and for all.
func toolListSizes(ctx context.Context, bin, url string) ([]toolListSize, error) {
	var out []toolListSize
	for _, ts := range append(config.Toolsets[:len(config.Toolsets):len(config.Toolsets)], "all") {
		args := []string{"serve", "--database-url", url}
		if ts != "all" {
			args = append(args, "--toolsets", ts)
		}
		size, err := toolList(ctx, bin, args)
		if err != nil {
			return nil, fmt.Errorf("tools/list with --toolsets %s: %w", ts, err)
		}
		size.toolsets = ts
		out = append(out, size)
	}
	return out, nil
}

// toolList starts cairn over stdio, initializes a session and reads tools/list's answer as sent.
func toolList(ctx context.Context, bin string, args []string) (toolListSize, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return toolListSize{}, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return toolListSize{}, err
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return toolListSize{}, err
	}
	defer func() {
		stdin.Close()
		cmd.Wait()
	}()
	// A write that fails shows as no answer below, with cairn's log.
	_, _ = io.WriteString(stdin, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}`+"\n"+
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`+"\n"+
		`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`+"\n")
	lines := bufio.NewScanner(stdout)
	lines.Buffer(nil, 16<<20)
	for lines.Scan() {
		var msg struct {
			ID     int `json:"id"`
			Result struct {
				Tools []json.RawMessage `json:"tools"`
			} `json:"result"`
		}
		if json.Unmarshal(lines.Bytes(), &msg) == nil && msg.ID == 2 {
			return toolListSize{tools: len(msg.Result.Tools), bytes: len(lines.Bytes())}, nil
		}
	}
	stdin.Close()
	cmd.Wait()
	return toolListSize{}, fmt.Errorf("no answer to tools/list (%v); cairn's log:\n%s", lines.Err(), stderr.String())
}

// printToolList prints the sizes as a Markdown table.
func printToolList(w io.Writer, sizes []toolListSize) {
	fmt.Fprintf(w, "\n| --toolsets | tools | tools/list bytes | ≈ tokens (4 bytes each) |\n|---|---|---|---|\n")
	for _, s := range sizes {
		fmt.Fprintf(w, "| %s | %d | %s | %d |\n", s.toolsets, s.tools, thousands(s.bytes), s.bytes/4)
	}
}

// thousands writes n with comma separators.
func thousands(n int) string {
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
