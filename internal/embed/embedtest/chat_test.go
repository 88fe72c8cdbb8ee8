package embedtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
)

// The chat stand-in must answer Ollama's own client, streamed or not, and remember what it got.
func TestChatWireFormat(t *testing.T) {
	s := embedtest.New()
	defer s.Close()
	u, _ := url.Parse(s.URL)
	c := api.NewClient(u, http.DefaultClient)
	ctx := context.Background()
	chat := func(stream bool, msgs ...api.Message) ([]api.ChatResponse, error) {
		var got []api.ChatResponse
		err := c.Chat(ctx, &api.ChatRequest{Model: "llama3.1", Messages: msgs, Stream: &stream}, func(r api.ChatResponse) error {
			got = append(got, r)
			return nil
		})
		return got, err
	}

	// No script: the model is missing, as in an Ollama that never pulled it.
	_, err := chat(false, api.Message{Role: "user", Content: "hi"})
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 404 || se.ErrorMessage != "model 'llama3.1' not found" {
		t.Fatalf("unscripted chat: %v", err)
	}

	s.SetChat(embedtest.Replies(
		embedtest.ToolCall("query", map[string]any{"sql": "SELECT 1"}),
		embedtest.Say("one"),
	))
	for i, stream := range []bool{false, true} {
		got, err := chat(stream, api.Message{Role: "user", Content: "q"}, api.Message{Role: "tool", ToolName: "query", Content: `{"rows":[]}`})
		if err != nil || len(got) != 1 || !got[0].Done || got[0].Message.Role != "assistant" {
			t.Fatalf("chat %d (stream %t): %+v, %v", i, stream, got, err)
		}
		m := got[0].Message
		switch i {
		case 0:
			if len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "query" {
				t.Fatalf("want one query call, got %+v", m)
			}
			if v, _ := m.ToolCalls[0].Function.Arguments.Get("sql"); v != "SELECT 1" {
				t.Fatalf("sql argument = %v", v)
			}
		case 1:
			if m.Content != "one" || len(m.ToolCalls) != 0 {
				t.Fatalf("want the answer one, got %+v", m)
			}
		}
	}
	// Past the script: a loud failure, not a silent repeat.
	_, err = chat(false, api.Message{Role: "user", Content: "again"})
	if !errors.As(err, &se) || se.StatusCode != 500 || !strings.Contains(se.ErrorMessage, "exhausted") {
		t.Fatalf("chat past the script: %v", err)
	}

	reqs := s.ChatRequests()
	if len(reqs) != 4 {
		t.Fatalf("recorded %d chat requests, want 4", len(reqs))
	}
	if tm := reqs[1].Messages[1]; tm.Role != "tool" || tm.ToolName != "query" || tm.Content != `{"rows":[]}` {
		t.Fatalf("recorded tool message = %+v", tm)
	}
	s.Reset()
	if n := len(s.ChatRequests()); n != 0 {
		t.Fatalf("Reset left %d chat requests", n)
	}
}
