package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/names"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/mcp"
)

func callCommand() *cli.Command {
	flags := slices.Concat([]cli.Flag{
		&cli.StringFlag{Name: "json", Usage: "the arguments as one JSON `OBJECT` (- reads it from stdin), instead of key=value pairs"},
		&cli.BoolFlag{Name: "list", Usage: "list the tools, one line each, and exit"},
		&cli.StringFlag{Name: "url", Usage: "call the running cairn at `URL` instead: its Streamable HTTP endpoint (…/mcp, or the base URL) or its SSE endpoint (…/sse)"},
		&cli.StringFlag{Name: "auth-token", EnvVars: []string{"CAIRN_AUTH_TOKEN"}, Usage: "bearer `TOKEN` the server at --url requires"},
		noMigrateFlag,
	}, toolFlags, callEmbedFlags(), dbFlags)
	return &cli.Command{
		Name:      "call",
		Usage:     "run one MCP tool and print its result as JSON",
		ArgsUsage: "TOOL [key=value ...]",
		Description: `Runs the tool in-process on the configured database (as ` + "`cairn serve`" + ` would, through the same MCP
server, so arguments are checked and results encoded exactly as a client sees them), or on the
running cairn at --url. In-process, the call is held to what serve applies to a stdio caller:
--permissions and --role (CAIRN_PERMISSIONS_FILE, CAIRN_ROLE), --read-only, the row and byte
caps and the statement timeout; at --url the server applies its own. Flags may come before or
after the tool name.

Arguments are key=value pairs, each value read as JSON when it is valid JSON (numbers, true,
false, null, arrays, objects, "quoted strings") and as a plain string otherwise; or one JSON
object with --json, not both.

Prints the tool's structured result as indented JSON on stdout (its text when it has none).

Exit codes: 0 the tool succeeded; 1 the tool reported an error (its message on stderr) or cairn
could not be reached; 2 usage: bad arguments, or no such tool (the tools are listed).

Examples:
   cairn call --list
   cairn call query sql="SELECT 1 AS x"
   cairn call query --json '{"sql": "SELECT * FROM agents WHERE template = $1", "params": ["coder"]}'
   cairn call execute sql="CREATE TABLE notes (id serial PRIMARY KEY, body text)"
   cairn call list_tables schema=public exact=true
   cairn call knowledge_search query="numpy import error" limit=5
   echo '{"workflow_id": "wf-1"}' | cairn call checkpoint_load --json -
   cairn call server_info --url http://127.0.0.1:8080 --auth-token "$(cat token)"`,
		Flags:  flags,
		Action: call,
	}
}

// callEmbedFlags are the embedder flags that matter to an in-process call (search embeds the
// query; writes only queue embed jobs, which a server or worker works).
func callEmbedFlags() []cli.Flag {
	var out []cli.Flag
	for _, f := range embedFlags {
		switch f.Names()[0] {
		case "embed-sweep", "embed-max-backoff":
			continue
		}
		out = append(out, f)
	}
	return out
}

func call(c *cli.Context) error {
	pos, err := interspersed(c)
	if errors.Is(err, errHelp) {
		return showHelp(c)
	}
	if err != nil {
		return cli.Exit(fmt.Sprintf("%v (see `cairn call --help`)", err), 2)
	}
	list := c.Bool("list")
	var tool string
	var pairs []string
	switch {
	case list && len(pos) > 0:
		return cli.Exit("--list takes no tool or arguments (see `cairn call --help`)", 2)
	case !list && len(pos) == 0:
		return cli.Exit("name the tool to call: cairn call TOOL [key=value ...] (`cairn call --list` lists them)", 2)
	case !list:
		tool, pairs = pos[0], pos[1:]
	}
	quietLogs(c)
	var args json.RawMessage
	if !list {
		if args, err = toolArguments(c.String("json"), c.IsSet("json"), pairs, os.Stdin); err != nil {
			return cli.Exit(fmt.Sprintf("%v (see `cairn call --help`)", err), 2)
		}
	}

	ctx := c.Context
	var cs *sdk.ClientSession
	if u := c.String("url"); u != "" {
		endpoint, sse, err := mcpEndpoint(u)
		if err != nil {
			return cli.Exit(err.Error(), 2)
		}
		if cs, err = remoteSession(ctx, endpoint, sse, c.String("auth-token")); err != nil {
			return cli.Exit(err.Error(), 1)
		}
		defer cs.Close()
	} else {
		var done func()
		if cs, done, err = inProcessSession(c); err != nil {
			return err
		}
		defer done()
	}

	tools, err := allTools(ctx, cs)
	if err != nil {
		return cli.Exit(fmt.Sprintf("list the tools: %v", err), 1)
	}
	if list {
		printTools(c.App.Writer, tools)
		return nil
	}
	if !slices.ContainsFunc(tools, func(t *sdk.Tool) bool { return t.Name == tool }) {
		// The list holds what this caller may call; for a tool cairn has, the server says why
		// this caller may not (its role, read-only mode).
		if _, known := mcp.KnownTools()[tool]; !known {
			return cli.Exit(unknownTool(tool, tools), 2)
		}
	}
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return cli.Exit(fmt.Sprintf("%s: %v", tool, err), 1)
	}
	out := resultOutput(res)
	if res.IsError {
		return cli.Exit(strings.TrimSpace(string(out)), 1)
	}
	w := c.App.Writer
	w.Write(out)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		io.WriteString(w, "\n")
	}
	return nil
}

// showHelp prints the command's help, as --help before the arguments would.
func showHelp(c *cli.Context) error {
	// The help of a command is looked up among its parent's commands.
	if l := c.Lineage(); len(l) > 1 {
		return cli.ShowCommandHelp(l[1], c.Command.Name)
	}
	return cli.ShowSubcommandHelp(c)
}

// quietLogs drops log messages below warn unless --log-level (or CAIRN_LOG_LEVEL) was given:
// the start-up messages of a one-shot command (migrations, the embedder chosen) would bury its
// output.
func quietLogs(c *cli.Context) {
	if !c.IsSet("log-level") {
		slog.SetDefault(slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn}))
	}
}

// minLevel passes on only the records at or above a level.
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

// errHelp is interspersed's answer to a --help after the arguments.
var errHelp = errors.New("help requested")

// interspersed returns the command's arguments and applies the flags found among them:
// urfave/cli stops reading flags at the first argument, and `cairn call query --url …` or
// `cairn ask "…" --model m` are how people type. A lone "-" is an argument; "--" ends the flags.
func interspersed(c *cli.Context) ([]string, error) {
	var pos []string
	args := c.Args().Slice()
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			return append(pos, args[i+1:]...), nil
		}
		if len(a) < 2 || a[0] != '-' {
			pos = append(pos, a)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if name == "help" || name == "h" {
			return nil, errHelp
		}
		var f cli.Flag
		for _, cf := range c.Command.Flags {
			if slices.Contains(cf.Names(), name) {
				f = cf
				break
			}
		}
		if f == nil {
			return nil, fmt.Errorf("flag provided but not defined: %s", a)
		}
		if !hasValue {
			if _, ok := f.(*cli.BoolFlag); ok {
				value = "true"
			} else if i+1 < len(args) {
				i++
				value = args[i]
			} else {
				return nil, fmt.Errorf("flag needs an argument: %s", a)
			}
		}
		if err := c.Set(name, value); err != nil {
			return nil, fmt.Errorf("invalid value %q for flag %s: %v", value, a, err)
		}
	}
	return pos, nil
}

// toolArguments builds the call's arguments object from --json (set says whether it was given;
// "-" reads stdin) or from key=value pairs, in the order given.
func toolArguments(jsonArg string, set bool, pairs []string, stdin io.Reader) (json.RawMessage, error) {
	if set {
		if len(pairs) > 0 {
			return nil, fmt.Errorf("give the arguments either with --json or as key=value pairs, not both (got %s)", strings.Join(pairs, " "))
		}
		raw := []byte(jsonArg)
		if jsonArg == "-" {
			b, err := io.ReadAll(stdin)
			if err != nil {
				return nil, fmt.Errorf("--json -: read stdin: %w", err)
			}
			raw = b
		}
		raw = bytes.TrimSpace(raw)
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil, fmt.Errorf("--json: want one JSON object like {\"sql\": \"SELECT 1\"}, got %q", abbreviate(string(raw), 80))
		}
		return raw, nil
	}
	var b bytes.Buffer
	b.WriteByte('{')
	seen := map[string]bool{}
	for i, p := range pairs {
		key, value, ok := strings.Cut(p, "=")
		if !ok || key == "" {
			return nil, fmt.Errorf("argument %q: want key=value, e.g. sql=\"SELECT 1\" or limit=5", p)
		}
		if seen[key] {
			return nil, fmt.Errorf("argument %q given twice", key)
		}
		seen[key] = true
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(key)
		b.Write(k)
		b.WriteByte(':')
		if json.Valid([]byte(value)) {
			b.WriteString(strings.TrimSpace(value))
		} else {
			v, _ := json.Marshal(value)
			b.Write(v)
		}
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// inProcessSession builds cairn's MCP server on the configured database, as serve does but
// without job workers (writes still queue their jobs for a server or worker to work), and
// connects a client to it in memory. done closes both and the pool.
func inProcessSession(c *cli.Context) (cs *sdk.ClientSession, done func(), err error) {
	cfg := toolConfig(c)
	if err := cfg.Normalize(); err != nil {
		return nil, nil, cli.Exit(err.Error(), 2)
	}
	// The same permissions as serve's: a caller who configured them in the environment expects
	// every entry point to honour them.
	perms, err := loadPermissions(cfg)
	if err != nil {
		return nil, nil, cli.Exit(err.Error(), 2)
	}
	ctx := c.Context
	log := slog.Default()
	pool, err := connect(ctx, c, cfg)
	if err != nil {
		return nil, nil, err
	}
	closers := []func(){pool.Close}
	done = func() {
		for _, f := range slices.Backward(closers) {
			f()
		}
	}
	defer func() {
		if err != nil {
			done()
		}
	}()
	if err := prepareSchema(ctx, pool, cfg.NoMigrate, log); err != nil {
		return nil, nil, err
	}
	kg, _, _, err := openKnowledge(c, pool, jobs.Options{Logger: log})
	if err != nil {
		return nil, nil, err
	}
	srv := newServer(pool, pool, cfg, serverSetup{perms: perms})
	closers = append(closers, srv.Close)
	if err := startServer(ctx, srv, pool, cfg, kg, mcp.About{}, nil); err != nil {
		return nil, nil, err
	}
	st, ct := sdk.NewInMemoryTransports()
	ss, err := srv.SDK().Connect(ctx, st, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("start the in-process MCP server: %w", err)
	}
	closers = append(closers, func() { ss.Close(); ss.Wait() })
	cs, err = newClient().Connect(ctx, ct, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to the in-process MCP server: %w", err)
	}
	closers = append(closers, func() { cs.Close() })
	return cs, done, nil
}

func newClient() *sdk.Client {
	return sdk.NewClient(&sdk.Implementation{Name: "cairn-cli", Version: cairnVersion()}, nil)
}

// remoteSession connects to a running cairn over Streamable HTTP, or SSE, sending the bearer
// token when there is one.
func remoteSession(ctx context.Context, endpoint string, sse bool, token string) (*sdk.ClientSession, error) {
	rt := &bearerTransport{token: token, base: http.DefaultTransport}
	hc := &http.Client{Transport: rt}
	var tr sdk.Transport = &sdk.StreamableClientTransport{Endpoint: endpoint, HTTPClient: hc}
	if sse {
		tr = &sdk.SSEClientTransport{Endpoint: endpoint, HTTPClient: hc}
	}
	cs, err := newClient().Connect(ctx, tr, nil)
	if err == nil {
		return cs, nil
	}
	switch st := int(rt.refused.Load()); {
	case st != 0 && token == "":
		return nil, fmt.Errorf("cairn at %s wants a token (HTTP %d %s): pass it with --auth-token or CAIRN_AUTH_TOKEN", endpoint, st, http.StatusText(st))
	case st != 0:
		return nil, fmt.Errorf("cairn at %s refused the token (HTTP %d %s): check --auth-token / CAIRN_AUTH_TOKEN", endpoint, st, http.StatusText(st))
	}
	return nil, fmt.Errorf("cannot connect to cairn at %s: %v", endpoint, err)
}

// mcpEndpoint turns --url into the endpoint to connect to: …/sse is SSE, …/mcp Streamable
// HTTP, and a base URL gets /mcp.
func mcpEndpoint(raw string) (endpoint string, sse bool, err error) {
	s := strings.TrimSpace(raw)
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", false, fmt.Errorf("--url %q: want an http(s) URL like http://127.0.0.1:8080/mcp", raw)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	switch {
	case strings.HasSuffix(u.Path, "/sse"):
		sse = true
	case strings.HasSuffix(u.Path, "/mcp"):
	default:
		u.Path += "/mcp"
	}
	return u.String(), sse, nil
}

// bearerTransport adds the bearer token to every request and remembers an authentication
// refusal, so that a failed connect can say what to fix rather than relay the SDK's message.
type bearerTransport struct {
	token   string
	base    http.RoundTripper
	refused atomic.Int32 // the last 401/403 status seen
}

func (t *bearerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if t.token != "" {
		r = r.Clone(r.Context())
		r.Header.Set("Authorization", "Bearer "+t.token)
	}
	resp, err := t.base.RoundTrip(r)
	if err == nil && (resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden) {
		t.refused.Store(int32(resp.StatusCode))
	}
	return resp, err
}

// allTools lists every tool of the session.
func allTools(ctx context.Context, cs *sdk.ClientSession) ([]*sdk.Tool, error) {
	var tools []*sdk.Tool
	for t, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, err
		}
		tools = append(tools, t)
	}
	return tools, nil
}

// printTools writes one line per tool: its name and title (or the first line of its
// description), marking the tools that write.
func printTools(w io.Writer, tools []*sdk.Tool) {
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
	tw.Flush()
}

// unknownTool says that there is no such tool, suggests the closest name, and lists them all.
func unknownTool(name string, tools []*sdk.Tool) string {
	names := make([]string, len(tools))
	for i, t := range tools {
		names[i] = t.Name
	}
	msg := fmt.Sprintf("no tool named %q", name)
	if s := closest(name, names); s != "" {
		msg += fmt.Sprintf("; did you mean %q?", s)
	}
	return msg + "\ntools: " + strings.Join(names, ", ") + "\n(`cairn call --list` describes them)"
}

// closest returns the name nearest to s by edit distance (up to a third of its length), else
// the shortest name containing it, else "".
func closest(s string, candidates []string) string {
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

// resultOutput is what call prints: the structured result as indented JSON — from the text
// content when that is the same JSON, which keeps the server's key order and exact digits —
// else the text.
func resultOutput(res *sdk.CallToolResult) []byte {
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

// abbreviate cuts s to n runes, marking the cut.
func abbreviate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
