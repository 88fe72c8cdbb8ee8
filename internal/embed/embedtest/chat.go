package embedtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/ollama/ollama/api"
)

// ChatFunc answers one /api/chat request with the message the model says. A non-nil error is
// sent back as Ollama's error answer (HTTP 500 with {"error": "<text>"}).
type ChatFunc func(req api.ChatRequest) (api.Message, error)

// chatState is the scripted side of the stand-in: how /api/chat answers and what it received.
type chatState struct {
	mu       sync.Mutex
	fn       ChatFunc
	requests []api.ChatRequest
}

// SetChat sets how /api/chat answers. With none set (the default), /api/chat answers 404
// "model not found", as an Ollama without the chat model does.
func (s *Server) SetChat(fn ChatFunc) {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	s.chat.fn = fn
}

// ChatRequests returns a copy of the /api/chat requests received (up to 4096), oldest first.
func (s *Server) ChatRequests() []api.ChatRequest {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	return append([]api.ChatRequest(nil), s.chat.requests...)
}

// Replies returns a ChatFunc that answers the requests with msgs in order, one each, and fails
// every request after the last, so a test whose model is asked more often than scripted fails
// loudly. A message without a role is the assistant's.
func Replies(msgs ...api.Message) ChatFunc {
	var mu sync.Mutex
	next := 0
	return func(api.ChatRequest) (api.Message, error) {
		mu.Lock()
		defer mu.Unlock()
		if next >= len(msgs) {
			return api.Message{}, fmt.Errorf("embedtest: chat script exhausted after %d replies", len(msgs))
		}
		next++
		return msgs[next-1], nil
	}
}

// ToolCall builds the message of a model that calls one tool with args (keys in no particular
// order).
func ToolCall(name string, args map[string]any) api.Message {
	a := api.NewToolCallFunctionArguments()
	for k, v := range args {
		a.Set(k, v)
	}
	return api.Message{Role: "assistant", ToolCalls: []api.ToolCall{{
		ID:       "call_" + name,
		Function: api.ToolCallFunction{Name: name, Arguments: a},
	}}}
}

// Say builds the message of a model that answers with text and calls no tool.
func Say(text string) api.Message {
	return api.Message{Role: "assistant", Content: text}
}

func (s *Server) chatHandler(w http.ResponseWriter, r *http.Request) {
	var req api.ChatRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if req.Model == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	s.chat.mu.Lock()
	if len(s.chat.requests) == maxRecorded {
		s.chat.requests = append(s.chat.requests[:0], s.chat.requests[1:]...)
	}
	s.chat.requests = append(s.chat.requests, req)
	fn := s.chat.fn
	s.chat.mu.Unlock()

	if fn == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	// Called outside the lock: a script may inspect the server (ChatRequests) while it answers.
	msg, err := fn(req)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	if msg.Role == "" {
		msg.Role = "assistant"
	}
	if msg.ToolCalls == nil && msg.Content == "" && msg.Thinking == "" {
		writeError(w, http.StatusInternalServerError, "embedtest: the chat script returned an empty message")
		return
	}
	resp := api.ChatResponse{
		Model:      req.Model,
		CreatedAt:  time.Now().UTC(),
		Message:    msg,
		Done:       true,
		DoneReason: "stop",
		Metrics:    api.Metrics{TotalDuration: time.Millisecond, PromptEvalCount: len(req.Messages), EvalCount: 1},
	}
	// Ollama streams unless told not to; one final chunk (done: true) is a whole stream.
	stream := req.Stream == nil || *req.Stream
	if stream {
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(http.StatusOK)
		_ = json.NewEncoder(w).Encode(resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}
