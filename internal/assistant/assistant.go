// Package assistant answers a question with a chat model that looks the answer up in cairn: the
// model (Ollama's chat API with tool calling) picks cairn's MCP tools, the assistant runs them
// through an MCP client session and hands the results back until the model answers.
package assistant

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/ollama/ollama/api"
)

// Defaults of Options.
const (
	// DefaultModel is the Ollama chat model asked unless told otherwise: small, local, and able
	// to call tools.
	DefaultModel          = "llama3.1"
	DefaultMaxSteps       = 8
	DefaultCallTimeout    = 60 * time.Second
	DefaultMaxResultChars = 16000
)

// SystemPrompt is what the model is told before the question.
const SystemPrompt = `You answer questions about the data kept by cairn: AI agents' workflows and checkpoints, agent executions and metrics, and a knowledge graph of entities, relations and episodes, all in PostgreSQL.
Use the tools to look the answer up; never guess. If a tool returns an error, correct the call and try again.
Answer briefly, with the names and numbers the tools returned.`

// Nudge is what a model that answered without calling any tool is told before it is asked again.
const Nudge = `You answered without calling any tool, but cairn's data is only available through the tools. Answer by calling the tools that look it up, then answer from their results.`

// Chatter is the model: Ollama's (*api.Client).Chat.
type Chatter interface {
	Chat(ctx context.Context, req *api.ChatRequest, fn api.ChatResponseFunc) error
}

// Session is the MCP client session to cairn: a *sdk.ClientSession.
type Session interface {
	ListTools(ctx context.Context, params *sdk.ListToolsParams) (*sdk.ListToolsResult, error)
	CallTool(ctx context.Context, params *sdk.CallToolParams) (*sdk.CallToolResult, error)
}

// Options configure Ask. Model, Chat and Session are required.
type Options struct {
	Model   string
	Chat    Chatter
	Session Session
	// AllowWrites offers the tools that write too; by default only those annotated read-only
	// are offered, which keeps the prompt small and the model's hands off the data.
	AllowWrites bool
	// MaxSteps is the most rounds of tool calls before Ask gives up; default DefaultMaxSteps.
	MaxSteps int
	// CallTimeout bounds each tool call; default DefaultCallTimeout.
	CallTimeout time.Duration
	// MaxResultChars caps the text of a tool result handed to the model (a 1000-row result would
	// crowd out the question); default DefaultMaxResultChars.
	MaxResultChars int
	// System replaces SystemPrompt when set.
	System string
	Logger *slog.Logger // default slog.Default()
}

// ToolCall is one tool call the model made and what cairn answered.
type ToolCall struct {
	Name      string          `json:"name"`
	Arguments json.RawMessage `json:"arguments"`
	IsError   bool            `json:"is_error"`
	// Result is the text handed back to the model: the tool's JSON result, or its error message.
	Result string `json:"result"`
}

// Answer is the model's answer and the tool calls it made on the way, in order.
type Answer struct {
	Model     string     `json:"model"`
	Answer    string     `json:"answer"`
	ToolCalls []ToolCall `json:"tool_calls"`
}

// Consulted reports whether the model called any tool before answering. A model that did not
// answered from its own knowledge, not from cairn's data.
func (a *Answer) Consulted() bool { return len(a.ToolCalls) > 0 }

// StepLimitError is returned when the model still calls tools after Options.MaxSteps rounds.
type StepLimitError struct{ Steps int }

func (e *StepLimitError) Error() string {
	return fmt.Sprintf("the model was still calling tools after %d rounds; ask a narrower question or allow more steps", e.Steps)
}

// ErrNoTools is returned when cairn offers no tool the model may use.
var ErrNoTools = errors.New("cairn offers no tools the model may use (check the server's --toolsets)")

// Ask puts question to the model and runs the tools it calls until it answers. A model whose
// first answer calls no tool is told once to use the tools (Nudge); if it still does not, its
// answer is returned with Consulted false. Tool errors go back to the model as the tool's
// result, so it can correct itself; only failures of the model, of the session, or ctx end Ask
// with an error — with the tool calls so far in the Answer (never nil).
func Ask(ctx context.Context, opts Options, question string) (*Answer, error) {
	opts = opts.withDefaults()
	ans := &Answer{Model: opts.Model, ToolCalls: []ToolCall{}}
	if opts.Model == "" || opts.Chat == nil || opts.Session == nil {
		return ans, errors.New("assistant: Options need a Model, a Chat client and a Session")
	}
	all, err := listTools(ctx, opts.Session)
	if err != nil {
		return ans, err
	}
	offered, err := ollamaTools(all, opts.AllowWrites)
	if err != nil {
		return ans, err
	}
	if len(offered) == 0 {
		return ans, ErrNoTools
	}
	known := make(map[string]bool, len(all))
	for _, t := range all {
		known[t.Name] = true
	}

	msgs := []api.Message{{Role: "system", Content: opts.System}, {Role: "user", Content: question}}
	nudged := false
	for rounds := 0; ; {
		msg, err := chat(ctx, opts, msgs, offered)
		if err != nil {
			return ans, err
		}
		if len(msg.ToolCalls) == 0 {
			if !ans.Consulted() && !nudged {
				opts.Logger.Debug("the model answered without calling a tool: asking again", "answer", msg.Content)
				nudged = true
				msgs = append(msgs, msg, api.Message{Role: "user", Content: Nudge})
				continue
			}
			ans.Answer = msg.Content
			return ans, nil
		}
		if rounds == opts.MaxSteps {
			return ans, &StepLimitError{Steps: rounds}
		}
		rounds++
		msgs = append(msgs, msg)
		for _, tc := range msg.ToolCalls {
			call, err := runTool(ctx, opts, known, tc)
			if err != nil {
				return ans, err
			}
			ans.ToolCalls = append(ans.ToolCalls, call)
			content := call.Result
			if call.IsError {
				content = "error: " + content
			}
			msgs = append(msgs, api.Message{Role: "tool", Content: content, ToolName: call.Name, ToolCallID: tc.ID})
		}
	}
}

func (o Options) withDefaults() Options {
	if o.MaxSteps <= 0 {
		o.MaxSteps = DefaultMaxSteps
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.MaxResultChars <= 0 {
		o.MaxResultChars = DefaultMaxResultChars
	}
	if o.System == "" {
		o.System = SystemPrompt
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// chat sends the conversation to the model and returns its reply, unstreamed.
func chat(ctx context.Context, opts Options, msgs []api.Message, tools api.Tools) (api.Message, error) {
	stream := false
	req := &api.ChatRequest{Model: opts.Model, Messages: msgs, Tools: tools, Stream: &stream}
	var reply api.Message
	start := time.Now()
	err := opts.Chat.Chat(ctx, req, func(r api.ChatResponse) error {
		// Unstreamed there is one response; were there several, they would be pieces of one reply.
		reply.Role = r.Message.Role
		reply.Content += r.Message.Content
		reply.Thinking += r.Message.Thinking
		reply.ToolCalls = append(reply.ToolCalls, r.Message.ToolCalls...)
		return nil
	})
	if err != nil {
		return reply, fmt.Errorf("chat with %s: %w", opts.Model, err)
	}
	if reply.Role == "" {
		reply.Role = "assistant"
	}
	opts.Logger.Debug("model replied", "model", opts.Model, "tool_calls", len(reply.ToolCalls), "took", time.Since(start))
	return reply, nil
}
