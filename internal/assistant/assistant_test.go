package assistant_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"

	"github.com/cairn-mcp/cairn/internal/assistant"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
)

type lookupArgs struct {
	Key string `json:"key" jsonschema:"the key to look up"`
}

type lookupResult struct {
	Key   string `json:"key"`
	Value int    `json:"value"`
}

// session connects an MCP client to a small in-memory server: lookup (read-only; "missing" is a
// tool error), slow (read-only; waits for cancellation), big (read-only; a long result) and store
// (a write).
func session(t *testing.T) *sdk.ClientSession {
	t.Helper()
	srv := sdk.NewServer(&sdk.Implementation{Name: "fake-cairn", Version: "1"}, nil)
	ro := &sdk.ToolAnnotations{ReadOnlyHint: true}
	sdk.AddTool(srv, &sdk.Tool{Name: "lookup", Description: "Look a key up.", Annotations: ro},
		func(_ context.Context, _ *sdk.CallToolRequest, in lookupArgs) (*sdk.CallToolResult, lookupResult, error) {
			if in.Key == "missing" {
				return nil, lookupResult{}, errors.New("no key missing: try a or b")
			}
			return nil, lookupResult{Key: in.Key, Value: len(in.Key)}, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "slow", Description: "Take forever.", Annotations: ro},
		func(ctx context.Context, _ *sdk.CallToolRequest, _ struct{}) (*sdk.CallToolResult, lookupResult, error) {
			<-ctx.Done()
			return nil, lookupResult{}, ctx.Err()
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "big", Description: "A long result.", Annotations: ro},
		func(context.Context, *sdk.CallToolRequest, struct{}) (*sdk.CallToolResult, lookupResult, error) {
			return nil, lookupResult{Key: strings.Repeat("é", 500)}, nil
		})
	sdk.AddTool(srv, &sdk.Tool{Name: "store", Description: "Write a key."},
		func(_ context.Context, _ *sdk.CallToolRequest, in lookupArgs) (*sdk.CallToolResult, lookupResult, error) {
			return nil, lookupResult{Key: in.Key}, nil
		})
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.Connect(context.Background(), st, nil)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "test", Version: "1"}, nil).Connect(context.Background(), ct, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cs.Close()
		ss.Wait()
	})
	return cs
}

// model starts the Ollama stand-in with a script and a client for it.
func model(t *testing.T, script ...api.Message) (*embedtest.Server, *api.Client) {
	t.Helper()
	s := embedtest.New()
	t.Cleanup(s.Close)
	if script != nil {
		s.SetChat(embedtest.Replies(script...))
	}
	u, err := url.Parse(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, api.NewClient(u, &http.Client{})
}

func toolNames(tools api.Tools) []string {
	var names []string
	for _, t := range tools {
		names = append(names, t.Function.Name)
	}
	return names
}

func lastMessage(req api.ChatRequest) api.Message { return req.Messages[len(req.Messages)-1] }

func TestAsk(t *testing.T) {
	type check func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest)
	cases := []struct {
		name   string
		script []api.Message
		opts   assistant.Options
		check  check
	}{
		{
			name:   "a tool call, its result sent back, then the answer",
			script: []api.Message{embedtest.ToolCall("lookup", map[string]any{"key": "abc"}), embedtest.Say("abc is 3")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || ans.Answer != "abc is 3" || !ans.Consulted() {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				if len(ans.ToolCalls) != 1 || ans.ToolCalls[0].Name != "lookup" || ans.ToolCalls[0].IsError ||
					string(ans.ToolCalls[0].Arguments) != `{"key":"abc"}` {
					t.Fatalf("tool calls %+v", ans.ToolCalls)
				}
				if len(reqs) != 2 {
					t.Fatalf("%d chat requests, want 2", len(reqs))
				}
				if r := reqs[0]; r.Messages[0].Role != "system" || r.Messages[1].Role != "user" || r.Messages[1].Content != "what is abc?" {
					t.Fatalf("first request's messages %+v", r.Messages)
				}
				if r := reqs[0]; r.Stream == nil || *r.Stream {
					t.Fatal("the request asked for a stream")
				}
				tm := lastMessage(reqs[1])
				var got lookupResult
				if tm.Role != "tool" || tm.ToolName != "lookup" || tm.ToolCallID != "call_lookup" || json.Unmarshal([]byte(tm.Content), &got) != nil || got.Value != 3 {
					t.Fatalf("tool message sent back = %+v", tm)
				}
				if prev := reqs[1].Messages[len(reqs[1].Messages)-2]; prev.Role != "assistant" || len(prev.ToolCalls) != 1 {
					t.Fatalf("the model's tool call is not in the history: %+v", prev)
				}
			},
		},
		{
			name:   "a tool error goes back to the model",
			script: []api.Message{embedtest.ToolCall("lookup", map[string]any{"key": "missing"}), embedtest.Say("it is missing")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || len(ans.ToolCalls) != 1 || !ans.ToolCalls[0].IsError {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				if tm := lastMessage(reqs[1]); tm.Role != "tool" || tm.Content != "error: no key missing: try a or b" {
					t.Fatalf("tool message %+v", tm)
				}
			},
		},
		{
			name:   "arguments the server refuses go back to the model",
			script: []api.Message{embedtest.ToolCall("lookup", map[string]any{"key": 5}), embedtest.Say("sorry")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || len(ans.ToolCalls) != 1 || !ans.ToolCalls[0].IsError || !strings.Contains(ans.ToolCalls[0].Result, "key") {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				if tm := lastMessage(reqs[1]); !strings.HasPrefix(tm.Content, "error: ") {
					t.Fatalf("tool message %+v", tm)
				}
			},
		},
		{
			name:   "an unknown tool goes back to the model with the tool names",
			script: []api.Message{embedtest.ToolCall("lookup_all", nil), embedtest.Say("sorry")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || len(ans.ToolCalls) != 1 || !ans.ToolCalls[0].IsError {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				if tm := lastMessage(reqs[1]); !strings.Contains(tm.Content, `no tool named "lookup_all"`) || !strings.Contains(tm.Content, "lookup, slow, store") {
					t.Fatalf("tool message %+v", tm)
				}
			},
		},
		{
			name:   "no tool call: asked again with the nudge, then reported",
			script: []api.Message{embedtest.Say("42"), embedtest.Say("still 42")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || ans.Consulted() || ans.Answer != "still 42" || len(ans.ToolCalls) != 0 {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				if len(reqs) != 2 {
					t.Fatalf("%d chat requests, want 2", len(reqs))
				}
				m := reqs[1].Messages
				if n := len(m); m[n-1].Role != "user" || m[n-1].Content != assistant.Nudge || m[n-2].Role != "assistant" || m[n-2].Content != "42" {
					t.Fatalf("second request's messages %+v", m)
				}
			},
		},
		{
			name:   "a tool call after the nudge counts",
			script: []api.Message{embedtest.Say("a guess"), embedtest.ToolCall("lookup", map[string]any{"key": "a"}), embedtest.Say("a is 1")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || !ans.Consulted() || ans.Answer != "a is 1" || len(reqs) != 3 {
					t.Fatalf("answer %+v, err %v, %d requests", ans, err, len(reqs))
				}
			},
		},
		{
			name: "a model that keeps calling tools stops at the step limit",
			script: []api.Message{
				embedtest.ToolCall("lookup", map[string]any{"key": "a"}),
				embedtest.ToolCall("lookup", map[string]any{"key": "b"}),
				embedtest.ToolCall("lookup", map[string]any{"key": "c"}),
			},
			opts: assistant.Options{MaxSteps: 2},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				var sl *assistant.StepLimitError
				if !errors.As(err, &sl) || sl.Steps != 2 || len(ans.ToolCalls) != 2 || len(reqs) != 3 {
					t.Fatalf("answer %+v, err %v, %d requests", ans, err, len(reqs))
				}
			},
		},
		{
			name:   "a call over the time limit is cancelled and reported to the model",
			script: []api.Message{embedtest.ToolCall("slow", nil), embedtest.Say("too slow")},
			opts:   assistant.Options{CallTimeout: 200 * time.Millisecond},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || len(ans.ToolCalls) != 1 || !ans.ToolCalls[0].IsError || !strings.Contains(ans.ToolCalls[0].Result, "longer than 200ms") {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
			},
		},
		{
			name:   "a long result is cut for the model, saying so",
			script: []api.Message{embedtest.ToolCall("big", nil), embedtest.Say("long")},
			opts:   assistant.Options{MaxResultChars: 100},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if err != nil || len(ans.ToolCalls) != 1 {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
				tm := lastMessage(reqs[1])
				head, _, ok := strings.Cut(tm.Content, "\n…[cut: ")
				if !ok || len([]rune(head)) != 100 {
					t.Fatalf("tool message %q", tm.Content)
				}
			},
		},
		{
			name:   "only read-only tools are offered by default",
			script: []api.Message{embedtest.Say("x"), embedtest.Say("x")},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if got := toolNames(reqs[0].Tools); !slices.Equal(got, []string{"big", "lookup", "slow"}) {
					t.Fatalf("offered %v", got)
				}
			},
		},
		{
			name:   "writes allowed: every tool is offered",
			script: []api.Message{embedtest.Say("x"), embedtest.Say("x")},
			opts:   assistant.Options{AllowWrites: true},
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				if got := toolNames(reqs[0].Tools); !slices.Equal(got, []string{"big", "lookup", "slow", "store"}) {
					t.Fatalf("offered %v", got)
				}
			},
		},
		{
			name: "a model Ollama does not have is an error",
			check: func(t *testing.T, ans *assistant.Answer, err error, reqs []api.ChatRequest) {
				var se api.StatusError
				if !errors.As(err, &se) || se.StatusCode != http.StatusNotFound || !strings.Contains(err.Error(), "chat with test-model") || ans == nil {
					t.Fatalf("answer %+v, err %v", ans, err)
				}
			},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stand, client := model(t, tc.script...)
			opts := tc.opts
			opts.Model, opts.Chat, opts.Session = "test-model", client, session(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ans, err := assistant.Ask(ctx, opts, "what is abc?")
			tc.check(t, ans, err, stand.ChatRequests())
		})
	}
}

// The model sees each tool's name, description and argument schema.
func TestOllamaTool(t *testing.T) {
	cs := session(t)
	res, err := cs.ListTools(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*sdk.Tool{}
	for _, tool := range res.Tools {
		byName[tool.Name] = tool
	}
	for _, tc := range []struct {
		tool string
		want string
	}{
		{"lookup", `{"type":"function","function":{"name":"lookup","description":"Look a key up.","parameters":{"type":"object","required":["key"],"properties":{"key":{"type":"string","description":"the key to look up"}}}}}`},
		{"slow", `{"type":"function","function":{"name":"slow","description":"Take forever.","parameters":{"type":"object","properties":{}}}}`},
	} {
		got, err := assistant.OllamaTool(byName[tc.tool])
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(got)
		if string(b) != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.tool, b, tc.want)
		}
	}
	if _, err := assistant.OllamaTool(&sdk.Tool{Name: "odd", InputSchema: json.RawMessage(`{"type":"object","properties":[1]}`)}); err == nil {
		t.Error("a schema whose properties are not an object converted without error")
	}
}
