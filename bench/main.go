// Command bench measures cairn against plain pgx in one run, so that ratios hold on a noisy,
// shared machine. `make bench` runs it against a throwaway cluster and prints a Markdown report
// (the figures in docs/BENCHMARKS.md come from it).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/eventstore"
	"github.com/cairn-mcp/cairn/migrations"
)

func main() {
	if dir := os.Getenv(echoEnv); dir != "" {
		if err := serveEcho(dir); err != nil {
			fmt.Fprintln(os.Stderr, "bench echo server:", err)
			os.Exit(1)
		}
		return
	}
	n := flag.Int("n", 2000, "calls per measurement")
	starts := flag.Int("starts", 20, "cold starts to time")
	depth := flag.Int("depth", 100000, "checkpoints in the deep workflow of the load benchmark")
	kn := flag.Int("kn", 100000, "entities in the knowledge search benchmark")
	kpipe := flag.Int("kpipeline", 5000, "entities written in each knowledge embed-pipeline run")
	knowledgeOnly := flag.Bool("knowledge-only", false, "run only the knowledge-graph benchmarks")
	toolsOnly := flag.Bool("tools-only", false, "measure only the size of tools/list per toolset")
	recoveryOnly := flag.Bool("recovery-only", false, "run only the recovery benchmarks of the embed pipeline")
	fairnessOnly := flag.Bool("fairness-only", false, "run only the fairness benchmark: another caller's latency while one runs 30 slow calls")
	langGraphOnly := flag.Bool("langgraph-only", false, "run only the LangGraph leg: CairnSaver beside PostgresSaver (clients/langgraph)")
	lgN := flag.Int("langgraph-n", 400, "put and getTuple calls per saver in the LangGraph leg (twice that with concurrent threads)")
	ro := recoveryOpts{}
	flag.IntVar(&ro.rows, "recovery-rows", 2000, "pending episodes in the recovery benchmarks")
	flag.DurationVar(&ro.phase, "recovery-phase", 30*time.Second, "how long Ollama answers 500, then how long it hangs, in the recovery benchmark")
	var po peersOpts
	peersOnly := flag.Bool("peers-only", false, "run only the peers leg: cairn, the peer MCP servers, a do-nothing go-sdk server and pgx, driven by the TypeScript SDK client (make bench-peers)")
	flag.IntVar(&po.rounds, "peers-rounds", 2, "interleaved rounds of the peers leg")
	flag.IntVar(&po.warm, "peers-warm", 100, "warm-up point lookups per server and round")
	flag.IntVar(&po.point, "peers-point", 2000, "point lookups per server and round")
	flag.IntVar(&po.thousand, "peers-thousand", 400, "1,000-row calls per server and round")
	flag.IntVar(&po.starts, "peers-starts", 5, "cold starts per server and round (the median is of all rounds' together)")
	flag.IntVar(&po.clients, "peers-clients", 8, "concurrent Streamable HTTP clients (0: no HTTP load)")
	flag.DurationVar(&po.httpFor, "peers-http", 12*time.Second, "length of the Streamable HTTP load")
	peersServers := flag.String("peers-servers", "", "comma-separated servers to measure (default all: "+strings.Join(peerNames, ",")+")")
	flag.StringVar(&po.toolsets, "peers-cairn-toolsets", "generic", "cairn's --toolsets in the peers leg (empty: all)")
	flag.StringVar(&po.profileDir, "peers-profile", "", "after the rounds, profile cairn and the do-nothing server with perf under each load into this folder")
	flag.Parse()
	if *peersOnly {
		if *peersServers != "" {
			po.only = strings.Split(*peersServers, ",")
		}
		if err := runPeers(context.Background(), po); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *kn < 1000 || *kpipe < 100 {
		fmt.Fprintln(os.Stderr, "bench: -kn must be at least 1000 and -kpipeline at least 100")
		os.Exit(2)
	}
	if *recoveryOnly {
		ro.only = true
	}
	ro.fairnessOnly = *fairnessOnly
	ro.langGraphOnly, ro.langGraphN = *langGraphOnly, *lgN
	if ro.phase < 5*time.Second || ro.rows < 100 {
		fmt.Fprintln(os.Stderr, "bench: -recovery-phase must be at least 5s and -recovery-rows at least 100")
		os.Exit(2)
	}
	if err := run(context.Background(), *n, *starts, *depth, knowledgeOpts{entities: *kn, pipelineRows: *kpipe, only: *knowledgeOnly}, ro, *toolsOnly); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const dbName = "cairn_bench"

// knowledgeOpts are the flags of the knowledge-graph benchmarks.
type knowledgeOpts struct {
	entities, pipelineRows int
	only                   bool
}

func run(ctx context.Context, n, starts, depth int, ko knowledgeOpts, ro recoveryOpts, toolsOnly bool) error {
	admin, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		return fmt.Errorf("connect (run through `make bench`, which starts PostgreSQL): %w", err)
	}
	defer admin.Close(ctx)
	if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)"); err != nil {
		return err
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+dbName); err != nil {
		return err
	}
	cc := admin.Config()
	url := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", cc.Host, cc.Port, cc.User, dbName)

	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	if _, err := migrations.Migrate(ctx, pool, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		return err
	}
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_items (
		id bigint PRIMARY KEY, name text NOT NULL, status text NOT NULL,
		created_at timestamptz NOT NULL, score numeric NOT NULL, payload jsonb NOT NULL);
		INSERT INTO bench_items SELECT g, 'item-' || g, CASE WHEN g % 3 = 0 THEN 'running' ELSE 'done' END,
			now() - g * interval '1 minute', g * 1.5, jsonb_build_object('g', g, 'tags', jsonb_build_array('a', 'b'))
		FROM generate_series(1, 10000) g; ANALYZE bench_items`); err != nil {
		return err
	}

	bin, err := buildCairn()
	if err != nil {
		return err
	}
	defer os.RemoveAll(filepath.Dir(bin))
	toolSizes, err := toolListSizes(ctx, bin, url)
	if err != nil {
		return err
	}
	if toolsOnly {
		printToolList(os.Stdout, toolSizes)
		return nil
	}
	if ro.only {
		return runRecovery(ctx, admin, bin, ro)
	}
	if ro.fairnessOnly {
		return runFairness(ctx, bin, url)
	}
	if ro.langGraphOnly {
		lg, err := benchLangGraph(ctx, admin, bin, ro.langGraphN)
		if err != nil {
			return fmt.Errorf("langgraph benchmarks: %w", err)
		}
		printLangGraph(os.Stdout, lg)
		return nil
	}
	if ko.only {
		kr, err := benchKnowledge(ctx, pool, bin, url, ko.entities, ko.pipelineRows)
		if err != nil {
			return fmt.Errorf("knowledge benchmarks: %w", err)
		}
		printKnowledge(os.Stdout, kr)
		return nil
	}

	const point = "SELECT * FROM bench_items WHERE id = $1"
	const thousand = "SELECT * FROM bench_items WHERE id <= $1 ORDER BY id"

	// Floor: plain pgx with its default statement cache, reading raw values.
	pgxPoint := measure(n, func(i int) error {
		_, err := readRaw(pool.Query(ctx, point, int64(i%10000+1)))
		return err
	})
	pgxThousand := measure(n/4, func(int) error {
		k, err := readRaw(pool.Query(ctx, thousand, int64(1000)))
		if err == nil && k != 1000 {
			return fmt.Errorf("got %d rows", k)
		}
		return err
	})

	cmd := exec.Command(bin, "--log-level", "warn", "serve", "--database-url", url)
	cmd.Stderr = os.Stderr
	client := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil)
	cs, err := client.Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return fmt.Errorf("start cairn: %w", err)
	}
	callQuery := func(sql string, arg int, wantRows int) error {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": sql, "params": []any{arg}}})
		if err != nil {
			return err
		}
		if res.IsError {
			return fmt.Errorf("tool error: %v", res.Content)
		}
		if wantRows > 0 && !strings.Contains(res.Content[0].(*sdk.TextContent).Text, `"row_count":`+strconv.Itoa(wantRows)+`,`) {
			return fmt.Errorf("want %d rows", wantRows)
		}
		return nil
	}
	// Warm up both sides equally (connections, caches).
	measure(200, func(i int) error { return callQuery(point, i+1, 1) })
	mcpPoint := measure(n, func(i int) error { return callQuery(point, i%10000+1, 1) })
	mcpThousand := measure(n/4, func(int) error { return callQuery(thousand, 1000, 1000) })
	rss, rssAnon := rssKB(cmd.Process.Pid)
	calls := 200 + n + n/4

	// The same results handed back by a go-sdk server that does nothing else: what the SDK and
	// the stdio transport cost by themselves for these payloads.
	echoDir, err := os.MkdirTemp("", "cairn-bench-echo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(echoDir)
	for name, sql := range map[string]string{"point": point, "thousand": thousand} {
		arg := 1
		if name == "thousand" {
			arg = 1000
		}
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": sql, "params": []any{arg}}})
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(echoDir, name), []byte(res.Content[0].(*sdk.TextContent).Text), 0o600); err != nil {
			return err
		}
	}
	cs.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	echoCmd := exec.Command(self)
	echoCmd.Env = append(os.Environ(), echoEnv+"="+echoDir)
	echoCmd.Stderr = os.Stderr
	es, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: echoCmd}, nil)
	if err != nil {
		return fmt.Errorf("start echo server: %w", err)
	}
	callEcho := func(name string) error {
		res, err := es.CallTool(ctx, &sdk.CallToolParams{Name: "echo", Arguments: map[string]any{"sql": point, "params": []any{name}}})
		if err != nil || res.IsError {
			return fmt.Errorf("echo: %v %v", err, res)
		}
		return nil
	}
	measure(200, func(int) error { return callEcho("point") })
	echoPoint := measure(n, func(int) error { return callEcho("point") })
	echoThousand := measure(n/4, func(int) error { return callEcho("thousand") })
	es.Close()

	cold := measure(starts, func(int) error {
		c := exec.Command(bin, "--log-level", "warn", "serve", "--database-url", url)
		s, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: c}, nil)
		if err != nil {
			return err
		}
		return s.Close()
	})

	appends1 := appendRate(ctx, pool, 1, 3*time.Second)
	appends8 := appendRate(ctx, pool, 8, 3*time.Second)
	// Last, so that the deep history it builds does not weigh on the measurements above.
	checkpoints, err := benchCheckpoints(ctx, pool, bin, url, n, depth)
	if err != nil {
		return fmt.Errorf("checkpoint benchmarks: %w", err)
	}
	lg, err := benchLangGraph(ctx, admin, bin, ro.langGraphN)
	if err != nil {
		return fmt.Errorf("langgraph benchmarks: %w", err)
	}
	agentFigures, err := benchAgents(ctx, pool, bin, url)
	if err != nil {
		return fmt.Errorf("agents benchmarks: %w", err)
	}
	// Last: it loads the largest table, and leaves the knowledge and job tables as its last run left them.
	knowledgeFigures, err := benchKnowledge(ctx, pool, bin, url, ko.entities, ko.pipelineRows)
	if err != nil {
		return fmt.Errorf("knowledge benchmarks: %w", err)
	}

	fmt.Printf("| measurement | cairn (MCP over stdio) | plain pgx (floor) | ratio | goal |\n|---|---|---|---|---|\n")
	fmt.Printf("| point lookup by $1, median | %s | %s | %.2fx | within 2x |\n", ms(mcpPoint.median), ms(pgxPoint.median), ratio(mcpPoint.median, pgxPoint.median))
	fmt.Printf("| point lookup, p95 | %s | %s | %.2fx | |\n", ms(mcpPoint.p95), ms(pgxPoint.p95), ratio(mcpPoint.p95, pgxPoint.p95))
	fmt.Printf("| 1,000-row result, median | %s | %s | %.2fx | within 2x |\n", ms(mcpThousand.median), ms(pgxThousand.median), ratio(mcpThousand.median, pgxThousand.median))
	fmt.Printf("| 1,000-row result, p95 | %s | %s | %.2fx | |\n", ms(mcpThousand.p95), ms(pgxThousand.p95), ratio(mcpThousand.p95, pgxThousand.p95))
	fmt.Printf("| same payloads from a go-sdk server that does nothing else (SDK + stdio alone): point / 1,000 rows, median | %s / %s | | | |\n", ms(echoPoint.median), ms(echoThousand.median))
	fmt.Printf("| cairn's own share (cairn − SDK alone): point / 1,000 rows, median | %s / %s | | %.2fx / %.2fx | |\n",
		ms(mcpPoint.median-echoPoint.median), ms(mcpThousand.median-echoThousand.median),
		ratio(mcpPoint.median-echoPoint.median, pgxPoint.median), ratio(mcpThousand.median-echoThousand.median, pgxThousand.median))
	fmt.Printf("| `serve` cold start (spawn → initialize answered), median of %d | %s | | | under 50 ms |\n", starts, ms(cold.median))
	fmt.Printf("| RSS after %d calls (heap and stacks / mapped binary) | %.1f MB (%.1f / %.1f) | | | under 25 MB |\n", calls,
		float64(rss)/1024, float64(rssAnon)/1024, float64(rss-rssAnon)/1024)
	fmt.Printf("\n| event store (Go API, one event per append, each its own transaction) | appends/s |\n|---|---|\n")
	fmt.Printf("| 1 writer | %.0f |\n| 8 concurrent writers (8 streams) | %.0f |\n", appends1, appends8)
	printCheckpoints(os.Stdout, checkpoints)
	printLangGraph(os.Stdout, lg)
	printAgents(os.Stdout, agentFigures)
	printKnowledge(os.Stdout, knowledgeFigures)
	printToolList(os.Stdout, toolSizes)
	if err := runFairness(ctx, bin, url); err != nil {
		return fmt.Errorf("fairness benchmark: %w", err)
	}
	return runRecovery(ctx, admin, bin, ro)
}

// appendRate measures event appends per second with n concurrent writers, each on its own
// stream with optimistic concurrency (expected version), for d.
func appendRate(ctx context.Context, pool *pgxpool.Pool, n int, d time.Duration) float64 {
	var total atomic.Int64
	stop := time.Now().Add(d)
	var wg sync.WaitGroup
	for w := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stream := fmt.Sprintf("bench-%d-%d", n, w)
			for v := int64(0); time.Now().Before(stop); v++ {
				_, err := eventstore.Append(ctx, pool, stream, []eventstore.NewEvent{{Type: "Saved", Data: map[string]int64{"step": v}}},
					eventstore.AppendOptions{ExpectedVersion: v})
				if err != nil {
					fmt.Fprintln(os.Stderr, "bench: append:", err)
					os.Exit(1)
				}
				total.Add(1)
			}
		}()
	}
	wg.Wait()
	return float64(total.Load()) / d.Seconds()
}

const echoEnv = "CAIRN_BENCH_ECHO_DIR"

// serveEcho is the baseline server: one tool that returns a recorded cairn result the way
// cairn's handler does (the JSON as text and as structured content), and does nothing else.
func serveEcho(dir string) error {
	payloads := map[string]string{}
	for _, name := range []string{"point", "thousand"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		payloads[name] = string(b)
	}
	s := sdk.NewServer(&sdk.Implementation{Name: "echo", Version: "1"}, nil)
	s.AddTool(&sdk.Tool{Name: "echo", InputSchema: json.RawMessage(`{"type":"object"}`)}, func(_ context.Context, req *sdk.CallToolRequest) (*sdk.CallToolResult, error) {
		var in struct {
			Params []string `json:"params"`
		}
		if err := json.Unmarshal(req.Params.Arguments, &in); err != nil || len(in.Params) != 1 {
			return nil, fmt.Errorf("bad echo arguments")
		}
		text := payloads[in.Params[0]]
		return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: text}}, StructuredContent: json.RawMessage(text)}, nil
	})
	return s.Run(context.Background(), &sdk.StdioTransport{})
}

type stats struct{ median, p95 time.Duration }

// readRaw reads a result's raw row values, no decoding — the floor's share of the work — and
// counts the rows.
func readRaw(rows pgx.Rows, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	k := 0
	for rows.Next() {
		_ = rows.RawValues()
		k++
	}
	return k, rows.Err()
}

func measure(n int, f func(int) error) stats {
	ds := make([]time.Duration, 0, n)
	for i := range n {
		t := time.Now()
		if err := f(i); err != nil {
			fmt.Fprintln(os.Stderr, "bench: call failed:", err)
			os.Exit(1)
		}
		ds = append(ds, time.Since(t))
	}
	slices.Sort(ds)
	return stats{median: ds[len(ds)/2], p95: ds[len(ds)*95/100]}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

// rssKB reads a process's resident set and its anonymous part (heap, stacks) in KiB; the rest
// is file-backed, mostly the executable's own pages.
func rssKB(pid int) (total, anon int) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	field := func(name string) int {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, name+":"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					k, _ := strconv.Atoi(f[0])
					return k
				}
			}
		}
		return 0
	}
	return field("VmRSS"), field("RssAnon")
}

func buildCairn() (string, error) {
	dir, err := os.MkdirTemp("", "cairn-bench-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "cairn")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/cairn-mcp/cairn/cmd/cairn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build cairn: %w", err)
	}
	return bin, nil
}
