package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/assistant"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// askSetup gives a test database and an Ollama stand-in answering from script, and the
// environment that points `cairn ask` (and the server it starts) at them.
func askSetup(t *testing.T, script ...api.Message) (*testdb.DB, *embedtest.Server, []string) {
	t.Helper()
	db := testdb.New(t)
	ollama := embedtest.New()
	t.Cleanup(ollama.Close)
	if script != nil {
		ollama.SetChat(embedtest.Replies(script...))
	}
	return db, ollama, []string{"DATABASE_URL=" + db.URL, "OLLAMA_HOST=" + ollama.URL, "CAIRN_EMBEDDER=builtin"}
}

// toolMessage is the last message of a chat request, which must be a tool result.
func toolMessage(t *testing.T, req api.ChatRequest) api.Message {
	t.Helper()
	m := req.Messages[len(req.Messages)-1]
	if m.Role != "tool" {
		t.Fatalf("the request's last message is %q, not a tool result: %+v", m.Role, m)
	}
	return m
}

func offered(req api.ChatRequest) []string {
	var names []string
	for _, tool := range req.Tools {
		names = append(names, tool.Function.Name)
	}
	return names
}

func TestAskAnswersWithTools(t *testing.T) {
	db, ollama, env := askSetup(t,
		embedtest.ToolCall("query", map[string]any{"sql": "SELECT count(*) AS n FROM workflows"}),
		embedtest.Say("There are 2 workflows."),
	)
	cp := checkpoint.New(db.Pool)
	for _, name := range []string{"deploy", "review"} {
		if _, err := cp.Start(context.Background(), checkpoint.StartParams{Name: name, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}

	r := runCLI(t, env, "ask", "how many workflows are there?", "--model", "tester")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, `→ query {"sql":"SELECT count(*) AS n FROM workflows"}`) || !strings.Contains(r.Stdout, "ok: ") ||
		!strings.HasSuffix(r.Stdout, "There are 2 workflows.\n") {
		t.Fatalf("stdout:\n%s", r.Stdout)
	}

	reqs := ollama.ChatRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d chat requests, want 2", len(reqs))
	}
	first := reqs[0]
	if first.Model != "tester" || first.Messages[len(first.Messages)-1].Content != "how many workflows are there?" {
		t.Fatalf("first request: model %q, messages %+v", first.Model, first.Messages)
	}
	// Read-only tools only, by default.
	if names := offered(first); !slices.Contains(names, "query") || slices.Contains(names, "execute") || slices.Contains(names, "workflow_start") {
		t.Fatalf("offered tools: %v", names)
	}
	// The query ran against the test database and its result went back to the model.
	tm := toolMessage(t, reqs[1])
	var res struct {
		Rows []struct {
			N json.Number `json:"n"`
		} `json:"rows"`
	}
	if tm.ToolName != "query" || json.Unmarshal([]byte(tm.Content), &res) != nil || len(res.Rows) != 1 || res.Rows[0].N != "2" {
		t.Fatalf("tool result sent back: %+v", tm)
	}
}

func TestAskWithoutToolCallIsAskedAgainThenReported(t *testing.T) {
	_, ollama, env := askSetup(t, embedtest.Say("Probably 42."), embedtest.Say("Still 42."))
	r := runCLI(t, env, "ask", "--model", "tester", "how many agents ran today?")
	if r.Code != 3 {
		t.Fatalf("exit %d, want 3\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if strings.TrimSpace(r.Stdout) != "Still 42." || !strings.Contains(r.Stderr, "without consulting cairn") {
		t.Fatalf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
	}
	reqs := ollama.ChatRequests()
	if len(reqs) != 2 {
		t.Fatalf("%d chat requests, want 2 (the question, then the nudge)", len(reqs))
	}
	if m := reqs[1].Messages[len(reqs[1].Messages)-1]; m.Role != "user" || m.Content != assistant.Nudge {
		t.Fatalf("second request does not end with the nudge: %+v", m)
	}
}

func TestAskWrites(t *testing.T) {
	cases := []struct {
		name      string
		flags     []string
		wantError bool // the tool result the model got is the server's refusal
		offered   bool // execute is offered to the model
	}{
		{name: "refused by the read-only server", wantError: true},
		{name: "allowed", flags: []string{"--allow-writes"}, offered: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			db, ollama, env := askSetup(t,
				embedtest.ToolCall("execute", map[string]any{"sql": "CREATE TABLE notes (id int)"}),
				embedtest.Say("Done."),
			)
			r := runCLI(t, env, append([]string{"ask", "create a notes table", "--model", "tester"}, tc.flags...)...)
			if r.Code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
			}
			reqs := ollama.ChatRequests()
			if len(reqs) != 2 {
				t.Fatalf("%d chat requests, want 2", len(reqs))
			}
			if got := slices.Contains(offered(reqs[0]), "execute"); got != tc.offered {
				t.Errorf("execute offered: %t, want %t", got, tc.offered)
			}
			tm := toolMessage(t, reqs[1])
			refused := strings.HasPrefix(tm.Content, "error: ") && strings.Contains(tm.Content, "read-only")
			if refused != tc.wantError || tm.ToolName != "execute" {
				t.Fatalf("tool result sent back: %+v", tm)
			}
			if want := map[bool]string{true: "  error: ", false: "  ok: "}[tc.wantError]; !strings.Contains(r.Stdout, want) {
				t.Errorf("stdout lacks %q:\n%s", want, r.Stdout)
			}
			var exists bool
			if err := db.Pool.QueryRow(context.Background(), `SELECT to_regclass('public.notes') IS NOT NULL`).Scan(&exists); err != nil {
				t.Fatal(err)
			}
			if exists == tc.wantError {
				t.Errorf("table notes exists: %t", exists)
			}
		})
	}
}

func TestAskJSON(t *testing.T) {
	_, _, env := askSetup(t,
		embedtest.ToolCall("list_tables", map[string]any{"schema": "nowhere"}),
		embedtest.ToolCall("query", map[string]any{"sql": "SELECT 'ok' AS status"}),
		embedtest.Say("All fine."),
	)
	r := runCLI(t, env, "ask", "--json", "--model", "tester", "is everything fine?")
	if r.Code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	var out struct {
		Answer    string `json:"answer"`
		Model     string `json:"model"`
		ToolCalls []struct {
			Name      string          `json:"name"`
			Arguments json.RawMessage `json:"arguments"`
			IsError   bool            `json:"is_error"`
			Result    string          `json:"result"`
		} `json:"tool_calls"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON (%v):\n%s", err, r.Stdout)
	}
	if out.Answer != "All fine." || out.Model != "tester" || len(out.ToolCalls) != 2 {
		t.Fatalf("%+v", out)
	}
	var args bytes.Buffer
	if c := out.ToolCalls[1]; c.Name != "query" || c.IsError || json.Compact(&args, c.Arguments) != nil || args.String() != `{"sql":"SELECT 'ok' AS status"}` || !strings.Contains(c.Result, `"status":"ok"`) {
		t.Fatalf("query call: %+v", c)
	}
}

func TestAskFailures(t *testing.T) {
	unused := []api.Message{embedtest.Say("unused")}
	loop := []api.Message{
		embedtest.ToolCall("query", map[string]any{"sql": "SELECT 1 AS one"}),
		embedtest.ToolCall("query", map[string]any{"sql": "SELECT 2 AS two"}),
	}
	cases := []struct {
		name   string
		args   []string
		script []api.Message // nil: the stand-in has no chat model
		code   int
		stderr string
		stdout string
	}{
		{name: "model missing", args: []string{"what?", "--model", "nosuch"}, code: 1, stderr: "ollama pull nosuch"},
		{name: "step limit", args: []string{"what?", "--max-steps", "1"}, script: loop, code: 1, stderr: "still calling tools after 1 rounds", stdout: `→ query {"sql":"SELECT 1 AS one"}`},
		{name: "no question", args: []string{"--model", "tester"}, script: unused, code: 2, stderr: "ask a question"},
		{name: "zero steps", args: []string{"what?", "--max-steps", "0"}, script: unused, code: 2, stderr: "--max-steps"},
		{name: "unknown flag", args: []string{"what?", "--temperature", "0"}, script: unused, code: 2, stderr: "--temperature"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, env := askSetup(t, tc.script...)
			r := runCLI(t, env, append([]string{"ask"}, tc.args...)...)
			if r.Code != tc.code || !strings.Contains(r.Stderr, tc.stderr) || !strings.Contains(r.Stdout, tc.stdout) {
				t.Fatalf("exit %d, want %d with %q\nstdout:\n%s\nstderr:\n%s", r.Code, tc.code, tc.stderr, r.Stdout, r.Stderr)
			}
		})
	}

	// Ollama gone: a clear message, not a hang.
	_, ollama, env := askSetup(t, embedtest.Say("unused"))
	ollama.Close()
	r := runCLI(t, env, "ask", "what?")
	if r.Code != 1 || !strings.Contains(r.Stderr, "Ollama is not answering") {
		t.Fatalf("exit %d\nstderr:\n%s", r.Code, r.Stderr)
	}
}
