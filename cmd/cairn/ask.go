package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/client"
	"github.com/cairn-mcp/cairn/internal/assistant"
	"github.com/cairn-mcp/cairn/internal/cliargs"
)

// exitNotConsulted is ask's exit code for an answer the model gave without calling any tool; the
// others are 0 (answered using cairn's tools), 1 (error) and 2 (usage).
const exitNotConsulted = 3

func askCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "model", Value: assistant.DefaultModel, EnvVars: []string{"CAIRN_CHAT_MODEL"}, Usage: "Ollama chat model; it must support tool calling"},
		&cli.StringFlag{Name: "ollama-host", EnvVars: []string{"OLLAMA_HOST"}, Usage: "Ollama's address, read as Ollama reads it (default http://127.0.0.1:11434)"},
		&cli.BoolFlag{Name: "allow-writes", Usage: "offer the model the tools that write too, on a writable server (otherwise the read-only tools only, on a --read-only server)"},
		&cli.DurationFlag{Name: "timeout", Value: 5 * time.Minute, Usage: "longest the whole question may take"},
		&cli.DurationFlag{Name: "call-timeout", Value: assistant.DefaultCallTimeout, Usage: "longest one tool call may take (the model is told it timed out)"},
		&cli.IntFlag{Name: "max-steps", Value: assistant.DefaultMaxSteps, Usage: "most rounds of tool calls before giving up"},
		&cli.BoolFlag{Name: "json", Usage: `print {"answer", "tool_calls": [{"name", "arguments", "is_error", "result"}], "model"} instead of text`},
	}, dbFlags)
	return &cli.Command{
		Name:      "ask",
		Usage:     "answer a question from cairn's data with a local model (Ollama) that calls cairn's tools",
		ArgsUsage: `"QUESTION"`,
		Description: `Starts ` + "`cairn serve`" + ` on the configured database as a subprocess (read-only unless
--allow-writes) and talks to it over MCP; a chat model reached through Ollama's API picks the
tools, cairn runs them and hands the results back, until the model answers. Prints the tool calls
made (name, arguments, ok or error, the start of the result), then the answer. Flags may come
before or after the question.

The model is --model / CAIRN_CHAT_MODEL (default ` + assistant.DefaultModel + `; any Ollama model with tool calling,
e.g. qwen2.5, mistral-nemo), on --ollama-host / OLLAMA_HOST. Only the read-only tools are offered
unless --allow-writes, which keeps the prompt small. A model that answers without calling any
tool is asked once more to use them.

Exit codes:
   0  answered, using cairn's tools
   1  error (Ollama or cairn unreachable, model missing, --max-steps reached, --timeout)
   2  usage
   3  answered without consulting cairn, even when asked again (the answer is printed, but
      it is the model's own, not cairn's data)

Examples:
   cairn ask "how many workflows are waiting for a human?"
   cairn ask "which agent template spent the most tokens this week?" --model qwen2.5
   cairn ask "have we seen ModuleNotFoundError numpy before, and what fixed it?" --json
   OLLAMA_HOST=gpu-box:11434 cairn ask "what failed in the last deployment?"`,
		Flags:  flags,
		Action: ask,
	}
}

func ask(c *cli.Context) error {
	pos, help, err := cliargs.Positional(c)
	if help || err != nil {
		return err
	}
	question := strings.TrimSpace(strings.Join(pos, " "))
	if question == "" {
		return cli.Exit(`ask a question: cairn ask "how many workflows are running?" (see `+"`cairn ask --help`)", 2)
	}
	if c.Int("max-steps") < 1 || c.Duration("timeout") <= 0 || c.Duration("call-timeout") <= 0 {
		return cli.Exit("--max-steps, --timeout and --call-timeout must be positive (see `cairn ask --help`)", 2)
	}
	model := strings.TrimSpace(c.String("model"))
	if model == "" {
		return cli.Exit("--model: name an Ollama chat model, e.g. "+assistant.DefaultModel, 2)
	}
	host := assistant.OllamaURL(c.String("ollama-host"))

	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	cs, err := serveSubprocess(ctx, c)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	defer cs.Close()

	ans, err := assistant.Ask(ctx, assistant.Options{
		Model:       model,
		Chat:        api.NewClient(host, &http.Client{}),
		Session:     cs.ClientSession,
		AllowWrites: c.Bool("allow-writes"),
		MaxSteps:    c.Int("max-steps"),
		CallTimeout: c.Duration("call-timeout"),
		Logger:      slog.Default(),
	}, question)
	w := c.App.Writer
	if err != nil {
		// What the model did before it failed is worth seeing.
		if len(ans.ToolCalls) > 0 {
			if perr := ans.Write(w, c.Bool("json"), false); perr != nil {
				return perr
			}
		}
		switch {
		case c.Err() != nil:
			return cli.Exit("interrupted", 1)
		case ctx.Err() != nil:
			return cli.Exit(fmt.Sprintf("no answer within --timeout %s", c.Duration("timeout")), 1)
		}
		return cli.Exit(assistant.Explain(err, model, host), 1)
	}
	if err := ans.Write(w, c.Bool("json"), true); err != nil {
		return err
	}
	if !ans.Consulted() {
		return cli.Exit(fmt.Sprintf("the model (%s) answered without consulting cairn — it called no tool, even when asked again — so the answer is its own, not cairn's data; try a model better at tool calling (--model)", model), exitNotConsulted)
	}
	return nil
}

// serveSubprocess starts `cairn serve` over stdio and connects to it. The database settings
// given to ask reach it through its environment rather than its command line, where any local
// user could read a password in a URL.
func serveSubprocess(ctx context.Context, c *cli.Context) (*client.Session, error) {
	env := os.Environ()
	for _, f := range dbFlags {
		name := f.Names()[0]
		ev, ok := f.(interface{ GetEnvVars() []string })
		if !ok || len(ev.GetEnvVars()) == 0 || !c.IsSet(name) {
			continue
		}
		env = append(env, ev.GetEnvVars()[0]+"="+fmt.Sprint(c.Value(name)))
	}
	if c.IsSet("ollama-host") {
		// The server's embedder uses the same Ollama.
		env = append(env, "OLLAMA_HOST="+c.String("ollama-host"))
	}
	// The server's info messages (migrations, startup) are noise under a question; an explicit
	// --log-level (or CAIRN_LOG_LEVEL) still reaches it.
	level := "warn"
	if c.IsSet("log-level") {
		level = c.String("log-level")
	}
	env = append(env, "CAIRN_LOG_LEVEL="+level, "CAIRN_LOG_FORMAT="+c.String("log-format"))
	return client.Subprocess(ctx, client.SubprocessOptions{Env: env, Stderr: c.App.ErrWriter, Version: cairnVersion(),
		Args: []string{"serve", "--transport", "stdio", "--read-only=" + strconv.FormatBool(!c.Bool("allow-writes"))}})
}
