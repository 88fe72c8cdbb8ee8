package main

// Tests of the container image that need no container engine: the Dockerfile's build command run
// exactly as written (a static binary, checked with debug/elf), its ENTRYPOINT, CMD and
// HEALTHCHECK run against the CLI, the commands of compose.yaml and docs/deploy.md likewise, and
// `cairn healthcheck` itself.

import (
	"bufio"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/cairn-mcp/cairn/internal/healthcheck"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/migrations"
)

// repoRoot is the module's root, where the Dockerfile is and where `docker build .` runs.
const repoRoot = "../.."

// dfInstr is one instruction of a Dockerfile, continuation lines joined.
type dfInstr struct {
	Line int    // where it starts
	Cmd  string // FROM, RUN, CMD, ... (upper case)
	Args string // the rest, as written
}

func (i dfInstr) String() string { return fmt.Sprintf("Dockerfile:%d: %s %s", i.Line, i.Cmd, i.Args) }

// dockerfile is the parsed Dockerfile: its stages, each starting with its FROM.
type dockerfile struct{ stages [][]dfInstr }

func readDockerfile(t *testing.T) *dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var instrs []dfInstr
	var cur *dfInstr
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may sit between continuation lines too
		}
		more := strings.HasSuffix(line, `\`)
		line = strings.TrimSpace(strings.TrimSuffix(line, `\`))
		if cur == nil {
			cmd, args, _ := strings.Cut(line, " ")
			instrs = append(instrs, dfInstr{Line: n, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
			cur = &instrs[len(instrs)-1]
		} else {
			cur.Args += " " + line
		}
		if !more {
			cur = nil
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	df := &dockerfile{}
	for _, in := range instrs {
		if in.Cmd == "FROM" {
			df.stages = append(df.stages, nil)
		} else if len(df.stages) == 0 {
			if in.Cmd != "ARG" {
				t.Fatalf("%v: before the first FROM", in)
			}
			continue
		}
		df.stages[len(df.stages)-1] = append(df.stages[len(df.stages)-1], in)
	}
	if len(df.stages) < 2 {
		t.Fatalf("Dockerfile: want a build stage and a final stage, found %d stage(s)", len(df.stages))
	}
	return df
}

// stage returns the stage named name (FROM ... AS name).
func (df *dockerfile) stage(t *testing.T, name string) []dfInstr {
	t.Helper()
	for _, st := range df.stages {
		f := strings.Fields(st[0].Args)
		if len(f) == 3 && strings.EqualFold(f[1], "AS") && f[2] == name {
			return st
		}
	}
	t.Fatalf("Dockerfile: no stage %q", name)
	return nil
}

func (df *dockerfile) final() []dfInstr { return df.stages[len(df.stages)-1] }

// dfOne returns the only instruction cmd of stage st; with several, Docker uses the last one, which
// a reader could miss, so the test wants exactly one.
func dfOne(t *testing.T, st []dfInstr, cmd string) dfInstr {
	t.Helper()
	var found []dfInstr
	for _, in := range st {
		if in.Cmd == cmd {
			found = append(found, in)
		}
	}
	if len(found) != 1 {
		t.Fatalf("Dockerfile: want one %s in the stage of line %d, found %d: %v", cmd, st[0].Line, len(found), found)
	}
	return found[0]
}

// execForm decodes an exec-form argument list (["a", "b"]). The image has no shell, so shell
// form would not run at all.
func execForm(t *testing.T, where fmt.Stringer, s string) []string {
	t.Helper()
	var args []string
	if err := json.Unmarshal([]byte(s), &args); err != nil || len(args) == 0 {
		t.Fatalf("%v: want the exec form [\"...\", ...] (the image has no shell): %v", where, err)
	}
	return args
}

// dfBuild is the Dockerfile's `go build` command as the build stage's shell would run it.
type dfBuild struct {
	Env  []string // the assignments before the command (CGO_ENABLED=1)
	Args []string // go build ...
	Out  string   // its -o
}

// buildCommand reads the build stage's RUN go build line, expanding the stage's ARGs (their
// defaults, overridden by args) as the shell would.
func (df *dockerfile) buildCommand(t *testing.T, args map[string]string) dfBuild {
	t.Helper()
	vars := map[string]string{}
	var run *dfInstr
	for _, in := range df.stage(t, "build") {
		switch in.Cmd {
		case "ARG":
			name, def, _ := strings.Cut(in.Args, "=")
			vars[name] = def
		case "RUN":
			if strings.Contains(in.Args, "go build") {
				if run != nil {
					t.Fatalf("%v: a second go build (the first is on line %d)", in, run.Line)
				}
				in := in
				run = &in
			}
		}
	}
	if run == nil {
		t.Fatal("Dockerfile: no RUN go build in the build stage")
	}
	for k, v := range args {
		if _, ok := vars[k]; !ok {
			t.Fatalf("Dockerfile: the build stage declares no ARG %s", k)
		}
		vars[k] = v
	}
	words, err := shellWords(run.Args, func(name string) (string, bool) { v, ok := vars[name]; return v, ok })
	if err != nil {
		t.Fatalf("%v: %v", run, err)
	}
	var b dfBuild
	for len(words) > 0 && regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*=`).MatchString(words[0]) {
		b.Env = append(b.Env, words[0])
		words = words[1:]
	}
	if len(words) < 2 || words[0] != "go" || words[1] != "build" {
		t.Fatalf("%v: want one command, go build ...", run)
	}
	b.Args = words
	i := slices.Index(words, "-o")
	if i < 0 || i+1 >= len(words) {
		t.Fatalf("%v: no -o", run)
	}
	b.Out = words[i+1]
	return b
}

// shellWords splits a simple shell command into words as sh would: quotes, backslashes, $NAME and
// ${NAME} (from vars; an unknown name is an error). Anything that would make it more than one
// simple command (;, &&, |, redirections, substitutions, globs) is refused, so the test runs
// exactly what the image's build runs.
func shellWords(s string, vars func(string) (string, bool)) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'; returns the bytes consumed
		rest := s[i+1:]
		var name string
		n := 1
		if strings.HasPrefix(rest, "{") {
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, errors.New("unterminated ${")
			}
			name, n = rest[1:end], end+2
		} else {
			name = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*`).FindString(rest)
			n += len(name)
		}
		if !regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`).MatchString(name) {
			return 0, fmt.Errorf("unsupported expansion at %q", s[i:])
		}
		v, ok := vars(name)
		if !ok {
			return 0, fmt.Errorf("$%s is neither an ARG nor an ENV of the stage", name)
		}
		cur.WriteString(v)
		return n, nil
	}
	for i := 0; i < len(s); i++ {
		switch ch := s[i]; {
		case ch == ' ' || ch == '\t' || ch == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case ch == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, errors.New("unterminated '")
			}
			cur.WriteString(s[i+1 : i+1+end])
			i += end + 1
			inWord = true
		case ch == '"':
			inWord = true
			for i++; ; i++ {
				if i >= len(s) {
					return nil, errors.New(`unterminated "`)
				}
				c := s[i]
				if c == '"' {
					break
				}
				switch {
				case c == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\", s[i+1]) >= 0:
					i++
					cur.WriteByte(s[i])
				case c == '$':
					n, err := expand(i)
					if err != nil {
						return nil, err
					}
					i += n - 1
				case c == '`':
					return nil, errors.New("command substitution")
				default:
					cur.WriteByte(c)
				}
			}
		case ch == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
				inWord = true
			}
		case ch == '$':
			n, err := expand(i)
			if err != nil {
				return nil, err
			}
			i += n - 1
			inWord = true
		case strings.IndexByte(";&|<>()`*?[", ch) >= 0:
			return nil, fmt.Errorf("%q: more than one simple command", ch)
		default:
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

func TestShellWords(t *testing.T) {
	vars := func(n string) (string, bool) { return map[string]string{"V": "1.2"}[n], n == "V" }
	got, err := shellWords(`A=1 go build -ldflags "-s -X main.version=${V} -extldflags '-static'" -o /out/x\ y $V ./cmd`, vars)
	want := []string{"A=1", "go", "build", "-ldflags", "-s -X main.version=1.2 -extldflags '-static'", "-o", "/out/x y", "1.2", "./cmd"}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("got %q, %v\nwant %q", got, err, want)
	}
	for _, bad := range []string{`go build && rm -rf /`, `go build $(x)`, `go build "$NOPE"`, `go build 'x`, `go build ${V:-x}`, `go build *.go`} {
		if _, err := shellWords(bad, vars); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// flagOf finds a flag of a cairn command by name.
func flagOf(t *testing.T, command, name string) cli.Flag {
	t.Helper()
	for _, c := range commands() {
		if c.Name != command {
			continue
		}
		for _, f := range c.Flags {
			if slices.Contains(f.Names(), name) {
				return f
			}
		}
	}
	t.Fatalf("cairn %s has no --%s", command, name)
	return nil
}

// flagValue finds --name's value in args.
func flagValue(args []string, name string) (string, bool) {
	for i, a := range args {
		if a == "--"+name && i+1 < len(args) {
			return args[i+1], true
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// healthServer answers every request with code and body.
func healthServer(t *testing.T, code int, body string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/healthz"
}

// refusedURL is a loopback URL nothing listens on.
func refusedURL(t *testing.T) string {
	t.Helper()
	return "http://" + testbin.FreeAddr(t) + "/healthz"
}

// runBin is runCLI for another binary.
func runBin(t *testing.T, bin string, extra []string, args ...string) cliResult {
	t.Helper()
	saved := cairnBin
	cairnBin = bin
	defer func() { cairnBin = saved }()
	return runCLI(t, extra, args...)
}

// checkHealthcheck runs `<bin> healthcheck` (args as the Dockerfile's HEALTHCHECK has them,
// pointed at test servers with CAIRN_HEALTHCHECK_URL) and checks its exit codes.
func checkHealthcheck(t *testing.T, bin string, args []string) {
	t.Helper()
	for _, tc := range []struct {
		name, url string
		code      int
		out       string
	}{
		{"200", healthServer(t, http.StatusOK, `{"status":"ok"}`), 0, "healthy: "},
		{"503", healthServer(t, http.StatusServiceUnavailable, `{"status":"unavailable"}`), 1, `503 Service Unavailable: {"status":"unavailable"}`},
		{"refused", refusedURL(t), 1, "connection refused"},
	} {
		r := runBin(t, bin, []string{"CAIRN_HEALTHCHECK_URL=" + tc.url}, args...)
		if r.Code != tc.code || !strings.Contains(r.Stdout+r.Stderr, tc.out) {
			t.Errorf("%s (%s): exit %d, want %d with %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), tc.name, r.Code, tc.code, tc.out, r.Stdout, r.Stderr)
		}
	}
}

func TestHealthcheck(t *testing.T) {
	checkHealthcheck(t, cairnBin, []string{"healthcheck"})

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	redirect := httptest.NewServer(http.RedirectHandler("/elsewhere", http.StatusFound))
	defer redirect.Close()
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"--url", healthServer(t, http.StatusNoContent, "")}, 0, "204"},
		{[]string{"--url", slow.URL, "--timeout", "200ms"}, 1, "did not answer within 200ms"},
		{[]string{"--url", redirect.URL}, 1, "302 Found"},
		{[]string{"--url", "127.0.0.1:8080/healthz"}, 2, "want an http:// or https:// URL"},
		{[]string{"--timeout", "0s"}, 2, "--timeout must be positive"},
		{[]string{"extra"}, 2, "unexpected argument"},
	} {
		start := time.Now()
		r := runCLI(t, nil, append([]string{"healthcheck"}, tc.args...)...)
		if r.Code != tc.code || !strings.Contains(r.Stdout+r.Stderr, tc.out) {
			t.Errorf("healthcheck %v: exit %d, want %d with %q\nstdout: %s\nstderr: %s", tc.args, r.Code, tc.code, tc.out, r.Stdout, r.Stderr)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("healthcheck %v took %s", tc.args, d)
		}
	}
	// The proxy of the environment is not used: the probe is of the process itself.
	r := runCLI(t, []string{"HTTP_PROXY=" + refusedURL(t), "http_proxy=" + refusedURL(t)}, "healthcheck", "--url", healthServer(t, http.StatusOK, "ok"))
	if r.Code != 0 {
		t.Errorf("healthcheck with HTTP_PROXY set: exit %d\n%s", r.Code, r.Stderr)
	}
	r = runCLI(t, nil, "healthcheck", "--help")
	if r.Code != 0 || !strings.Contains(r.Stdout, healthcheck.DefaultURL) {
		t.Errorf("healthcheck --help: exit %d, no default URL %s in\n%s", r.Code, healthcheck.DefaultURL, r.Stdout)
	}
}

// TestDockerfile checks the Dockerfile against the CLI it packages: the Go version, the non-root
// user, the port, and the ENTRYPOINT + CMD and HEALTHCHECK run against this build's flag parsing.
func TestDockerfile(t *testing.T) {
	df := readDockerfile(t)

	// The builder's Go is go.mod's.
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil {
		t.Fatal("go.mod: no go line")
	}
	build := df.stage(t, "build")
	if want := "golang:" + string(m[1]) + "-bookworm AS build"; build[0].Args != want {
		t.Errorf("%v: want FROM %s (go.mod says go %s)", build[0], want, m[1])
	}
	b := df.buildCommand(t, nil)
	if !slices.Contains(b.Env, "CGO_ENABLED=1") {
		t.Errorf("go build without CGO_ENABLED=1: pg_query_go needs cgo (%q)", b.Env)
	}

	final := df.final()
	// The binary the final stage copies is the one the build stage writes, to the ENTRYPOINT.
	entry := execForm(t, dfOne(t, final, "ENTRYPOINT"), dfOne(t, final, "ENTRYPOINT").Args)
	if len(entry) != 1 {
		t.Fatalf("ENTRYPOINT %q: want the binary alone, so that CMD and `docker run IMAGE worker` name the command", entry)
	}
	copied := false
	for _, in := range final {
		if in.Cmd == "COPY" && in.Args == "--from=build "+b.Out+" "+entry[0] {
			copied = true
		}
	}
	if !copied {
		t.Errorf("final stage: no COPY --from=build %s %s", b.Out, entry[0])
	}
	user := dfOne(t, final, "USER")
	if uid, _, _ := strings.Cut(user.Args, ":"); uid == "0" || uid == "root" || uid == "" {
		t.Errorf("%v: the image must not run as root", user)
	}
	if s := dfOne(t, final, "STOPSIGNAL"); s.Args != "SIGTERM" {
		t.Errorf("%v: cairn drains on SIGTERM (and SIGINT)", s)
	}

	// CMD: parses with this build's flags, and is what the port, the health check's URL and
	// EXPOSE agree on.
	cmd := execForm(t, dfOne(t, final, "CMD"), dfOne(t, final, "CMD").Args)
	if r := runCLI(t, nil, append(slices.Clone(cmd), "--help")...); r.Code != 0 {
		t.Errorf("%s %s --help: exit %d\n%s", entry[0], strings.Join(cmd, " "), r.Code, r.Stderr)
	}
	// Without a token it refuses to listen beyond loopback: the image needs CAIRN_AUTH_TOKEN.
	if r := runCLI(t, nil, cmd...); r.Code != 2 || !strings.Contains(r.Stderr, "CAIRN_AUTH_TOKEN") {
		t.Errorf("%s without CAIRN_AUTH_TOKEN: exit %d, want 2 naming the token\n%s", strings.Join(cmd, " "), r.Code, r.Stderr)
	}
	addr, ok := flagValue(cmd, "addr")
	if !ok {
		t.Fatalf("CMD %q: no --addr (the default listens on loopback only, unreachable from outside the container)", cmd)
	}
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("CMD --addr %q: %v", addr, err)
	}
	if tr, _ := flagValue(cmd, "transport"); tr != "http" && tr != "sse" {
		t.Errorf("CMD %q: want --transport http (or sse): stdio has nothing to listen on", cmd)
	}
	if e := dfOne(t, final, "EXPOSE"); e.Args != port && e.Args != port+"/tcp" {
		t.Errorf("%v: the CMD listens on %s", e, port)
	}
	hu, err := url.Parse(healthcheck.DefaultURL)
	if err != nil || hu.Port() != port || hu.Path != "/healthz" {
		t.Errorf("cairn healthcheck probes %s by default; the CMD serves /healthz on port %s", healthcheck.DefaultURL, port)
	}

	// HEALTHCHECK: exec form, the ENTRYPOINT's binary, exit codes right, and its own timeout
	// longer than the probe's so that a slow answer is reported by cairn, not killed by Docker.
	hc := dfOne(t, final, "HEALTHCHECK")
	opts, form, ok := strings.Cut(hc.Args, "CMD ")
	if !ok {
		t.Fatalf("%v: want HEALTHCHECK [OPTIONS] CMD [...]", hc)
	}
	probe := execForm(t, hc, form)
	if probe[0] != entry[0] || len(probe) < 2 || probe[1] != "healthcheck" {
		t.Fatalf("%v: want [%q, \"healthcheck\", ...]", hc, entry[0])
	}
	checkHealthcheck(t, cairnBin, probe[1:])
	probeTimeout := flagOf(t, "healthcheck", "timeout").(*cli.DurationFlag).Value
	if v, ok := flagValue(probe, "timeout"); ok {
		if probeTimeout, err = time.ParseDuration(v); err != nil {
			t.Fatal(err)
		}
	}
	dockerTimeout := 30 * time.Second // Docker's default
	for _, o := range strings.Fields(opts) {
		if v, ok := strings.CutPrefix(o, "--timeout="); ok {
			if dockerTimeout, err = time.ParseDuration(v); err != nil {
				t.Fatalf("%v: %v", hc, err)
			}
		}
	}
	if probeTimeout >= dockerTimeout {
		t.Errorf("%v: Docker's --timeout (%s) must exceed the probe's (%s)", hc, dockerTimeout, probeTimeout)
	}
}

// knownEnv is every environment variable cairn reads: its flags' and libpq's.
func knownEnv() map[string]bool {
	env := map[string]bool{}
	for _, name := range []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGSSLMODE",
		"PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGPASSFILE", "PGSERVICE", "PGSERVICEFILE", "PGAPPNAME", "PGCONNECT_TIMEOUT", "PGTARGETSESSIONATTRS"} {
		env[name] = true
	}
	var walk func([]*cli.Command)
	add := func(fs []cli.Flag) {
		for _, f := range fs {
			if df, ok := f.(cli.DocGenerationFlag); ok {
				for _, e := range df.GetEnvVars() {
					env[e] = true
				}
			}
		}
	}
	walk = func(cs []*cli.Command) {
		for _, c := range cs {
			add(c.Flags)
			walk(c.Subcommands)
		}
	}
	add(logFlags)
	walk(commands())
	return env
}

// TestDockerComposeAndDeployDoc runs the cairn commands of compose.yaml and docs/deploy.md
// (compose `command:` and health check `test:` lists, and the task definitions' "command" lists)
// against this build's flag parsing, and checks every CAIRN_ / PG variable they set is one cairn
// reads, so that neither can drift from the CLI.
func TestDockerComposeAndDeployDoc(t *testing.T) {
	env := knownEnv()
	cairnCommand := func(where string, args []string) {
		t.Helper()
		if len(args) > 0 && args[0] == "/cairn" {
			args = args[1:]
		}
		if len(args) == 0 {
			t.Errorf("%s: an empty cairn command", where)
			return
		}
		if args[0] == "healthcheck" {
			// Probe a stand-in instead of the URL the container would probe.
			probe := healthServer(t, http.StatusOK, "ok")
			args = slices.Clone(args)
			if i := slices.Index(args, "--url"); i > 0 && i+1 < len(args) {
				args[i+1] = probe
			}
			r := runCLI(t, []string{"CAIRN_HEALTHCHECK_URL=" + probe}, args...)
			if r.Code != 0 {
				t.Errorf("%s: cairn %s: exit %d\n%s", where, strings.Join(args, " "), r.Code, r.Stderr)
			}
			return
		}
		if r := runCLI(t, nil, append(slices.Clone(args), "--help")...); r.Code != 0 {
			t.Errorf("%s: cairn %s --help: exit %d\n%s", where, strings.Join(args, " "), r.Code, r.Stderr)
		}
	}
	envVar := regexp.MustCompile(`\b(CAIRN_[A-Z0-9_]+|PG[A-Z_]+|DATABASE_URL|OLLAMA_HOST)\b`)
	checkEnv := func(where, text string) {
		t.Helper()
		for _, v := range envVar.FindAllString(text, -1) {
			if !env[v] && v != "PGPASSWORD_FILE" {
				t.Errorf("%s: %s is no variable cairn reads", where, v)
			}
		}
	}

	// compose.yaml: the services built from the Dockerfile (image cairn:local).
	compose, err := os.ReadFile(filepath.Join(repoRoot, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	service, inServices := "", false
	cairnServices := map[string]bool{}
	var pending []struct {
		where string
		args  []string
	}
	listLine := regexp.MustCompile(`^\s+(command|test):\s*(\[.*\])\s*$`)
	for n, line := range strings.Split(string(compose), "\n") {
		where := fmt.Sprintf("compose.yaml:%d", n+1)
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		switch {
		case line == "services:":
			inServices = true
		case len(line) > 0 && line[0] != ' ':
			inServices = false
			service = ""
		case inServices && regexp.MustCompile(`^  [a-z0-9_-]+:\s*$`).MatchString(line):
			service = strings.TrimSuffix(strings.TrimSpace(line), ":")
		}
		if strings.TrimSpace(line) == "image: cairn:local" {
			cairnServices[service] = true
		}
		if m := listLine.FindStringSubmatch(line); m != nil && inServices {
			var args []string
			if err := json.Unmarshal([]byte(m[2]), &args); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if m[1] == "test" {
				if args[0] != "CMD" {
					t.Errorf("%s: health check %q: want [\"CMD\", ...] (the cairn image has no shell)", where, args)
					continue
				}
				args = args[1:]
			}
			pending = append(pending, struct {
				where string
				args  []string
			}{where + " (" + service + ")", args})
		}
		if !strings.HasPrefix(strings.TrimSpace(line), "image:") {
			checkEnv(where, line)
		}
	}
	if len(cairnServices) < 3 {
		t.Errorf("compose.yaml: want the migrate, serve and worker services on image cairn:local, found %v", cairnServices)
	}
	ran := 0
	for _, p := range pending {
		svc := p.where[strings.LastIndex(p.where, "(")+1 : len(p.where)-1]
		if cairnServices[svc] {
			cairnCommand(p.where, p.args)
			ran++
		}
	}
	if ran < 3 {
		t.Errorf("compose.yaml: ran %d cairn commands, want at least serve, worker and migrate", ran)
	}

	// docs/deploy.md: every "command" list of its JSON examples whose first word is a cairn
	// command (or /cairn), and the variables it names.
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "deploy.md"))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, c := range commands() {
		names[c.Name] = true
	}
	docCommand := regexp.MustCompile(`"command":\s*(\[[^\]]*\])`)
	ran = 0
	for n, line := range strings.Split(string(doc), "\n") {
		where := fmt.Sprintf("docs/deploy.md:%d", n+1)
		checkEnv(where, line)
		for _, m := range docCommand.FindAllStringSubmatch(line, -1) {
			var args []string
			if err := json.Unmarshal([]byte(m[1]), &args); err != nil {
				t.Errorf("%s: %v", where, err)
				continue
			}
			if len(args) > 0 && args[0] == "CMD" {
				args = args[1:]
			}
			if len(args) > 0 && (args[0] == "/cairn" || names[args[0]]) {
				cairnCommand(where, args)
				ran++
			}
		}
	}
	if ran < 3 {
		t.Errorf("docs/deploy.md: ran %d cairn commands from its task definitions, want serve, worker and migrate at least", ran)
	}
}

// staticBuild is the binary the Dockerfile builds, built once per test process.
var staticBuild struct {
	once    sync.Once
	bin     string
	version string
	took    time.Duration
	err     error
}

// staticCairn builds cairn with the Dockerfile's go build line, as written, in the repository
// root (the build stage's WORKDIR holds the whole context). Slow the first time (pg_query_go's C
// code, linked statically); the build cache keeps it for the next run.
func staticCairn(t *testing.T) (bin, version string) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: building the static binary compiles PostgreSQL's parser (a few minutes without a build cache)")
	}
	const testVersion = "static-test-1"
	b := readDockerfile(t).buildCommand(t, map[string]string{"VERSION": testVersion})
	staticBuild.once.Do(func() {
		staticBuild.version = testVersion
		// Beside the test's own build, in the directory TestMain removes.
		staticBuild.bin = filepath.Join(filepath.Dir(cairnBin), "cairn-static")
		args := slices.Clone(b.Args)
		args[slices.Index(args, "-o")+1] = staticBuild.bin
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), b.Env...)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		staticBuild.took = time.Since(start)
		if err != nil {
			staticBuild.err = fmt.Errorf("%s: %v\n%s", strings.Join(append(b.Env, args...), " "), err, out)
		} else if len(out) > 0 {
			// glibc warns here when something would need NSS or dlopen at run time
			// ("Using 'getaddrinfo' in statically linked applications requires ...").
			staticBuild.err = fmt.Errorf("the static build printed warnings:\n%s", out)
		}
	})
	if staticBuild.err != nil {
		t.Fatal(staticBuild.err)
	}
	return staticBuild.bin, staticBuild.version
}

// TestStaticBinary builds the image's binary as the Dockerfile does and checks it is static and
// runs: version, the CMD's flags, the health check.
func TestStaticBinary(t *testing.T) {
	bin, version := staticCairn(t)

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has a PT_INTERP program header: it is dynamically linked and will not start in an image without libc", bin)
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s has a PT_DYNAMIC program header", bin)
		}
	}
	if libs, err := f.ImportedLibraries(); err != nil || len(libs) > 0 {
		t.Errorf("%s needs shared libraries %q (%v)", bin, libs, err)
	}
	if syms, _ := f.ImportedSymbols(); len(syms) > 0 {
		t.Errorf("%s imports %d dynamic symbols, e.g. %v", bin, len(syms), syms[0])
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("static binary: %s, %.1f MB, %s %s, built in %s", bin, float64(st.Size())/1e6, f.Class, f.Machine, staticBuild.took.Round(time.Second))

	r := runBin(t, bin, nil, "version")
	if want := fmt.Sprintf("cairn %s (schema %d)", version, migrations.Latest()); r.Code != 0 || strings.TrimSpace(r.Stdout) != want {
		t.Errorf("static cairn version: exit %d, %q; want %q (-X main.version from the Dockerfile's ldflags)", r.Code, r.Stdout, want)
	}
	df := readDockerfile(t)
	cmd := execForm(t, dfOne(t, df.final(), "CMD"), dfOne(t, df.final(), "CMD").Args)
	r = runBin(t, bin, nil, append(slices.Clone(cmd), "--help")...)
	if r.Code != 0 {
		t.Errorf("static cairn %s --help: exit %d\n%s", strings.Join(cmd, " "), r.Code, r.Stderr)
	}
	for _, flag := range []string{"--transport", "--addr", "--auth-token"} {
		if !strings.Contains(r.Stdout, flag) {
			t.Errorf("static cairn serve --help does not show %s", flag)
		}
	}
	checkHealthcheck(t, bin, []string{"healthcheck"})
	r = runBin(t, bin, nil, "healthcheck", "--url", healthServer(t, http.StatusOK, "ok"))
	if r.Code != 0 {
		t.Errorf("static cairn healthcheck --url: exit %d\n%s", r.Code, r.Stderr)
	}
}

// TestImageServes runs the static binary as the image does — the ENTRYPOINT and CMD, with
// only the listen address moved to a free loopback port, the token in a file as compose.yaml has
// it — against a test database: the health checks pass, a query goes through pg_query's
// statically linked parser, a wrong token is refused, and SIGTERM drains and exits 0.
func TestImageServes(t *testing.T) {
	bin, _ := staticCairn(t)
	db := testdb.New(t)
	df := readDockerfile(t)
	cmd := execForm(t, dfOne(t, df.final(), "CMD"), dfOne(t, df.final(), "CMD").Args)
	addr := testbin.FreeAddr(t)
	args := slices.Clone(cmd)
	args[slices.Index(args, "--addr")+1] = addr
	const token = "static-image-token"

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := exec.CommandContext(ctx, bin, args...)
	// The token as compose.yaml passes it: a secret file of name:role:token lines.
	tokens := filepath.Join(t.TempDir(), "cairn_tokens")
	if err := os.WriteFile(tokens, []byte("# compose secret\nagent:admin:"+token+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.Env = append(cleanEnv(), "DATABASE_URL="+db.URL, "CAIRN_AUTH_TOKENS_FILE="+tokens, "CAIRN_EMBEDDER=builtin", "CAIRN_LOG_FORMAT=json")
	var logs testbin.Logs
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		if srv.ProcessState == nil {
			srv.Process.Kill()
			<-exited
		}
	}()

	// /healthz answers as soon as the process serves, /readyz once it has started (connected,
	// migrated): what an orchestrator waits for before it sends traffic.
	ready := "http://" + addr + "/readyz"
	deadline := time.Now().Add(90 * time.Second)
	for {
		r := runBin(t, bin, nil, "healthcheck", "--url", ready, "--timeout", "1s")
		if r.Code == 0 {
			break
		}
		select {
		case err := <-exited:
			t.Fatalf("cairn %s exited before it was ready: %v\n%s", strings.Join(args, " "), err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready within 90 s: %s\n%s", r.Stderr, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := runBin(t, bin, nil, "healthcheck", "--url", "http://"+addr+"/healthz"); r.Code != 0 {
		t.Errorf("/healthz: exit %d\n%s", r.Code, r.Stderr)
	}
	// A tool call through the HTTP transport: pg_query classifies the statement.
	r := runCLI(t, nil, "call", "query", "sql=SELECT 41 + 1 AS answer", "--url", "http://"+addr+"/mcp", "--auth-token", token)
	if r.Code != 0 || !strings.Contains(r.Stdout, `"answer": 42`) {
		t.Errorf("call query over /mcp: exit %d\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}
	r = runCLI(t, nil, "call", "query", "sql=SELECT 1", "--url", "http://"+addr+"/mcp", "--auth-token", "not-"+token)
	if r.Code != 1 || !strings.Contains(r.Stderr, "401") {
		t.Errorf("call with a wrong token: exit %d, want 1 with 401\nstderr: %s", r.Code, r.Stderr)
	}
	r = runCLI(t, nil, "call", "query", "sql=DELETE FROM workflows", "--url", "http://"+addr+"/mcp", "--auth-token", token)
	if r.Code != 1 || !strings.Contains(r.Stdout+r.Stderr, "DELETE") {
		t.Errorf("call query with a DELETE: exit %d, want 1 (refused by the parser)\nstdout: %s\nstderr: %s", r.Code, r.Stdout, r.Stderr)
	}

	start := time.Now()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("after SIGTERM: %v\n%s", err, logs.String())
		}
		t.Logf("stopped %s after SIGTERM", time.Since(start).Round(time.Millisecond))
	case <-time.After(45 * time.Second):
		t.Fatalf("still running 45 s after SIGTERM\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"shutting down: finishing calls in flight"`) {
		t.Errorf("no JSON shutdown log line:\n%s", logs.String())
	}
}
