package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestScaleOut runs cairn as it scales out: three `cairn serve --transport http` processes and
// two `cairn worker` processes on one database (they migrate it at start, racing under advisory
// locks), one Ollama stand-in, and go-sdk clients over Streamable HTTP, one per server, driven
// round-robin from concurrent goroutines. Its parts, in order:
//
//   - fencing: racing checkpoint_save calls with expected_version spread over the servers: exactly
//     one winner per version, the losers told the current version, no gap in the history;
//   - embed-once: episodes added through every server are each embedded exactly once, whichever
//     of the five processes' River clients ran the jobs, and every embed job completed on its
//     first attempt;
//   - subscription: sessions subscribed on server 1 (SSE with resources/subscribe, Streamable
//     HTTP with 2026-07-28's subscriptions/listen) hear of saves made through servers 2 and 3;
//   - kill: a server is SIGKILLed while clients write; writes that failed for want of their
//     server are retried elsewhere (checkpoint_save, with its idempotency_key) or checked
//     (knowledge_add_episode): no acknowledged write is lost, none is doubled, and the
//     survivors embed the episodes written around the kill;
//   - shutdown: the processes still running stop promptly and cleanly on SIGTERM.
//
// SCALEOUT_CAIRN_BIN runs another binary (e.g. one built with -race) instead of the test's own;
// SCALEOUT_VERBOSE=1 prints every process's stderr even when the test passes.
func TestScaleOut(t *testing.T) {
	// Not parallel: five processes plus concurrent clients are load enough for a 2-CPU machine,
	// and the test asserts on latencies (a notification within seconds).
	db := testdb.New(t)
	ollama := embedtest.New()
	t.Cleanup(ollama.Close)
	token := soRandHex(16)

	c := soStartCluster(t, db.URL, ollama.URL, token)
	t.Logf("cluster up in %s: %s", c.startup.Round(time.Millisecond), strings.Join(c.urls(), ", "))

	t.Run("auth", func(t *testing.T) { soCheckAuth(t, c) })
	t.Run("fencing", func(t *testing.T) { soFencing(t, c) })
	t.Run("embed-once", func(t *testing.T) { soEmbedOnce(t, c, db, ollama) })
	t.Run("subscription", func(t *testing.T) { soSubscription(t, c) })
	t.Run("kill", func(t *testing.T) { soKillMidRun(t, c, db) })
	t.Run("shutdown", func(t *testing.T) { soShutdown(t, c) })
}

// ---- the processes ----

// soProc is one cairn process.
type soProc struct {
	name string
	cmd  *exec.Cmd
	log  *testbin.Logs
	base string // http://127.0.0.1:PORT of a server; "" for a worker

	exited  chan struct{} // closed once Wait returned
	waitErr error         // Wait's error, set before exited is closed
}

func (p *soProc) done() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

// soCluster is the processes and a client per server.
type soCluster struct {
	servers   []*soServer
	workers   []*soProc
	token     string
	transport *http.Transport
	http      *http.Client // adds the bearer token
	startup   time.Duration
}

// soServer is a serve process and the Streamable HTTP client session connected to it.
type soServer struct {
	*soProc
	cs *sdk.ClientSession
}

func (c *soCluster) procs() []*soProc {
	var ps []*soProc
	for _, s := range c.servers {
		ps = append(ps, s.soProc)
	}
	return append(ps, c.workers...)
}

func (c *soCluster) urls() []string {
	var us []string
	for _, s := range c.servers {
		us = append(us, s.base+"/mcp")
	}
	return us
}

// soBearer adds "Authorization: Bearer <token>" to every request.
type soBearer struct {
	token string
	next  http.RoundTripper
}

func (b soBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

var soServeURL = regexp.MustCompile(`msg="serving MCP over HTTP".* url=(http://127\.0\.0\.1:[0-9]+)/mcp`)

const (
	soStartWait = 90 * time.Second // migrations race and -race load slows the start
	soStopWait  = 30 * time.Second // serve drains calls (15 s) and jobs (10 s + 5 s) at most
)

// soStartCluster starts three servers and two workers at once, waits until each says it is up,
// and connects a client to each server. Every process is killed when the test ends, whatever
// happened, and its stderr printed if the test failed.
func soStartCluster(t *testing.T, dbURL, ollamaURL, token string) *soCluster {
	t.Helper()
	bin := cairnBin
	if b := os.Getenv("SCALEOUT_CAIRN_BIN"); b != "" {
		bin = b
	}
	embedArgs := []string{"--database-url", dbURL, "--embedder", "ollama", "--ollama-host", ollamaURL,
		"--embed-sweep", "300ms", "--embed-max-backoff", "300ms"}
	c := &soCluster{token: token, transport: http.DefaultTransport.(*http.Transport).Clone()}
	c.http = &http.Client{Transport: soBearer{token, c.transport}}
	start := func(name string, args ...string) *soProc {
		p := &soProc{name: name, log: &testbin.Logs{}, exited: make(chan struct{})}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Env = cleanEnv()
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		go func() {
			p.waitErr = p.cmd.Wait()
			close(p.exited)
		}()
		t.Cleanup(func() {
			if !p.done() {
				p.cmd.Process.Kill()
				<-p.exited
			}
			if t.Failed() || os.Getenv("SCALEOUT_VERBOSE") != "" {
				t.Logf("---- %s (%s) stderr ----\n%s", p.name, p.base, p.log)
			}
		})
		return p
	}
	began := time.Now()
	for i := range 3 {
		p := start(fmt.Sprintf("serve-%d", i+1), append([]string{"serve", "--transport", "http", "--addr", "127.0.0.1:0",
			"--auth-token", token}, embedArgs...)...)
		c.servers = append(c.servers, &soServer{soProc: p})
	}
	for i := range 2 {
		c.workers = append(c.workers, start(fmt.Sprintf("worker-%d", i+1), append([]string{"worker"}, embedArgs...)...))
	}

	deadline := time.Now().Add(soStartWait)
	for _, p := range c.procs() {
		for {
			out := p.log.String()
			if m := soServeURL.FindStringSubmatch(out); m != nil && strings.HasPrefix(p.name, "serve") {
				p.base = m[1]
				break
			}
			if strings.HasPrefix(p.name, "worker") && strings.Contains(out, `msg="working background jobs (no MCP)"`) {
				break
			}
			if p.done() {
				t.Fatalf("%s exited at start (%v)", p.name, p.waitErr)
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not say it was up within %s", p.name, soStartWait)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	c.startup = time.Since(began)

	for _, s := range c.servers {
		client := sdk.NewClient(&sdk.Implementation{Name: "cairn-scaleout", Version: "1"}, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		cs, err := client.Connect(ctx, &sdk.StreamableClientTransport{Endpoint: s.base + "/mcp", HTTPClient: c.http}, nil)
		cancel()
		if err != nil {
			t.Fatalf("connect to %s at %s/mcp: %v", s.name, s.base, err)
		}
		s.cs = cs
		t.Cleanup(func() { cs.Close() })
	}
	return c
}

// ---- calling tools from many goroutines ----

// soResult is what one tool call came back with. err is set when no answer arrived (the server
// went away, the call timed out, a protocol error): the write may or may not have happened.
type soResult struct {
	err   error
	isErr bool // a tool error: the call was answered and refused
	text  string
	data  map[string]any
}

func (r soResult) String() string {
	switch {
	case r.err != nil:
		return "no answer: " + r.err.Error()
	case r.isErr:
		return "tool error: " + r.text
	}
	return "ok: " + r.text
}

// soCall calls a tool; it is safe from any goroutine and never fails the test itself.
func soCall(cs *sdk.ClientSession, timeout time.Duration, tool string, args any) soResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: tool, Arguments: args})
	if err != nil {
		return soResult{err: err}
	}
	r := soResult{isErr: res.IsError}
	for _, c := range res.Content {
		if tc, ok := c.(*sdk.TextContent); ok {
			r.text += tc.Text
		}
	}
	if res.StructuredContent != nil {
		b, err := json.Marshal(res.StructuredContent)
		if err != nil {
			return soResult{err: err}
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(&r.data); err != nil {
			return soResult{err: fmt.Errorf("structured content is not an object: %s", b)}
		}
	}
	return r
}

// soOK calls a tool that must succeed, from the test's goroutine.
func soOK(t *testing.T, s *soServer, tool string, args any) map[string]any {
	t.Helper()
	r := soCall(s.cs, 60*time.Second, tool, args)
	if r.err != nil || r.isErr || r.data == nil {
		t.Fatalf("%s through %s %v: %s", tool, s.name, args, r)
	}
	return r.data
}

func soInt(v any) int64 {
	switch n := v.(type) {
	case json.Number:
		i, err := n.Int64()
		if err != nil {
			return -1
		}
		return i
	case float64:
		return int64(n)
	}
	return -1
}

func soRandHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// soHistory returns a workflow's events through a server.
func soHistory(t *testing.T, s *soServer, id string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range soOK(t, s, "workflow_history", map[string]any{"workflow_id": id, "limit": 1000})["events"].([]any) {
		out = append(out, e.(map[string]any))
	}
	return out
}

// soCheckHistory checks that a workflow's history runs from version 1 to want without a gap or
// a repeat, and returns its CheckpointSaved events' checkpoint ids by version.
func soCheckHistory(t *testing.T, s *soServer, id string, want int64) map[int64]string {
	t.Helper()
	saved := map[int64]string{}
	evs := soHistory(t, s, id)
	var versions []int64
	for i, e := range evs {
		v := soInt(e["version"])
		versions = append(versions, v)
		if v != int64(i+1) {
			t.Errorf("%s: history versions %v: a gap or a repeat at index %d", id, versions, i)
			return saved
		}
		if e["type"] == "CheckpointSaved" {
			data, _ := e["data"].(map[string]any)
			cp, _ := data["checkpoint_id"].(string)
			if cp == "" {
				t.Errorf("%s: CheckpointSaved at version %d names no checkpoint: %v", id, v, e)
			}
			saved[v] = cp
		}
	}
	if int64(len(evs)) != want {
		t.Errorf("%s: history ends at version %d, want %d", id, len(evs), want)
	}
	return saved
}

// ---- the parts ----

// soCheckAuth: every server wants the token.
func soCheckAuth(t *testing.T, c *soCluster) {
	for _, s := range c.servers {
		body := strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
		resp, err := http.Post(s.base+"/mcp", "application/json", body)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s answered a call without the token with %s, want 401", s.name, resp.Status)
		}
	}
}

var soConflictAt = regexp.MustCompile(`it is at ([0-9]+)`)

// soFencing: per workflow, rounds of K savers spread over the servers race checkpoint_save with
// the version each last saw. Each round exactly one wins, with the next version; every loser is
// told the version the winner made, and saves with it next round.
func soFencing(t *testing.T, c *soCluster) {
	const (
		workflows = 4
		rounds    = 8
		savers    = 6
	)
	type key struct {
		wf      string
		version int64
	}
	var mu sync.Mutex
	wins := map[key][]string{} // checkpoint ids of the successful saves of each version
	conflicts := 0

	var wg sync.WaitGroup
	for w := range workflows {
		id := fmt.Sprintf("so-fence-%d", w)
		start := soOK(t, c.servers[w%3], "workflow_start", map[string]any{"name": "fencing", "workflow_id": id})
		v0 := soInt(start["version"])
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := make([]int64, savers) // the version each saver last saw
			for i := range seen {
				seen[i] = v0
			}
			for round := range rounds {
				v := v0 + int64(round)
				for i, s := range seen {
					if s != v {
						t.Errorf("%s round %d: saver %d last saw version %d, want %d (the round's starting version)", id, round, i, s, v)
						return
					}
				}
				results := make([]soResult, savers)
				go1 := make(chan struct{})
				var rwg sync.WaitGroup
				for i := range savers {
					srv := c.servers[(w+round+i)%3]
					rwg.Add(1)
					go func() {
						defer rwg.Done()
						<-go1
						results[i] = soCall(srv.cs, 60*time.Second, "checkpoint_save", map[string]any{
							"workflow_id": id, "node_id": fmt.Sprintf("saver-%d", i),
							"state":            map[string]any{"round": round, "saver": i, "via": srv.name},
							"expected_version": seen[i]})
					}()
				}
				close(go1)
				rwg.Wait()
				won := 0
				for i, r := range results {
					switch {
					case r.err != nil:
						t.Errorf("%s round %d saver %d: %s", id, round, i, r)
						return
					case !r.isErr:
						won++
						got := soInt(r.data["version"])
						mu.Lock()
						wins[key{id, got}] = append(wins[key{id, got}], fmt.Sprint(r.data["checkpoint_id"]))
						mu.Unlock()
						if got != v+1 {
							t.Errorf("%s round %d: saver %d won with version %d, want %d", id, round, i, got, v+1)
						}
						seen[i] = got
					default:
						m := soConflictAt.FindStringSubmatch(r.text)
						if !strings.Contains(r.text, "conflict") || m == nil {
							t.Errorf("%s round %d saver %d: want a version conflict, got %s", id, round, i, r)
							return
						}
						cur, _ := strconv.ParseInt(m[1], 10, 64)
						if cur != v+1 {
							t.Errorf("%s round %d saver %d: conflict names version %d, want %d (the winner's): %s", id, round, i, cur, v+1, r.text)
						}
						mu.Lock()
						conflicts++
						mu.Unlock()
						seen[i] = cur
					}
				}
				if won != 1 {
					t.Errorf("%s round %d (expected_version %d): %d winners, want exactly 1; results: %v", id, round, v, won, results)
					return
				}
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	for w := range workflows {
		id := fmt.Sprintf("so-fence-%d", w)
		s := c.servers[(w+1)%3]
		got := soOK(t, s, "workflow_get", map[string]any{"workflow_id": id})
		final := soInt(got["version"])
		// workflow_start is version 1; each round adds one.
		if final != 1+rounds {
			t.Errorf("%s: final version %d, want %d", id, final, 1+rounds)
		}
		saved := soCheckHistory(t, s, id, 1+rounds)
		if len(saved) != rounds {
			t.Errorf("%s: %d CheckpointSaved events, want %d", id, len(saved), rounds)
		}
		for v := int64(2); v <= 1+rounds; v++ {
			ids := wins[key{id, v}]
			if len(ids) != 1 {
				t.Errorf("%s version %d: %d successful saves, want exactly 1", id, v, len(ids))
				continue
			}
			if saved[v] != ids[0] {
				t.Errorf("%s version %d: the winner saved %s, the history says %s", id, v, ids[0], saved[v])
			}
		}
	}
	t.Logf("%d workflows × %d rounds × %d savers: %d wins, %d conflicts", workflows, rounds, savers, len(wins), conflicts)
}

// soEmbedOnce: episodes added round-robin through the servers are embedded, each text sent to
// the model exactly once, whichever process ran the job; every embed job completed first time.
func soEmbedOnce(t *testing.T, c *soCluster, db *testdb.DB, ollama *embedtest.Server) {
	const (
		writers = 6
		each    = 10
		total   = writers * each
	)
	marker := func(i int) string { return fmt.Sprintf("[so-emb-%03d]", i) }
	ids := make([]int64, total)
	var wg sync.WaitGroup
	for g := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				i := g*each + k
				s := c.servers[i%3]
				r := soCall(s.cs, 60*time.Second, "knowledge_add_episode", map[string]any{
					"name":         fmt.Sprintf("scale-out %d", i),
					"content":      fmt.Sprintf("%s the payment service returned HTTP 502 to checkout, seen through %s", marker(i), s.name),
					"episode_type": "error"})
				if r.err != nil || r.isErr || r.data["embedding"] != "pending" {
					t.Errorf("knowledge_add_episode %d through %s: %s", i, s.name, r)
					return
				}
				ids[i] = soInt(r.data["id"])
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var embedded, pending, failed int
		err := db.Pool.QueryRow(ctx, `SELECT
				count(*) FILTER (WHERE embed_state = 'embedded' AND embedding IS NOT NULL AND embedded_hash = content_hash),
				count(*) FILTER (WHERE embed_state = 'pending'),
				count(*) FILTER (WHERE embed_state = 'failed')
			FROM episodes WHERE id = ANY($1)`, ids).Scan(&embedded, &pending, &failed)
		if err != nil {
			t.Fatal(err)
		}
		if failed > 0 {
			t.Fatalf("%d episodes failed to embed", failed)
		}
		if embedded == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("episodes embedded: %d of %d (%d pending) after 60 s", embedded, total, pending)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// What the model was asked: each episode's text once, and nothing of ours more.
	counts := map[string]int{}
	for _, req := range ollama.Requests() {
		for _, in := range req.Input {
			if i := strings.Index(in, "[so-emb-"); i >= 0 {
				counts[in[i:i+len("[so-emb-000]")]]++
			}
		}
	}
	var twice []string
	for i := range total {
		switch n := counts[marker(i)]; {
		case n == 0:
			t.Errorf("episode %s (#%d) is embedded but the model never saw its text", marker(i), ids[i])
		case n > 1:
			twice = append(twice, fmt.Sprintf("%s×%d", marker(i), n))
		}
	}
	if len(twice) > 0 || len(counts) != total {
		t.Errorf("texts embedded more than once: %v (%d distinct texts seen, want %d)", twice, len(counts), total)
	}

	// The jobs: every write queued one; each ran once and completed. Sweeps come every 300 ms,
	// so wait for the jobs the writes queued and judge the sweeps that have finished.
	type job struct {
		id        int64
		state     string
		attempt   int
		sweep     bool
		by        string
		errors    string
		finalized bool
	}
	var jobs []job
	deadline = time.Now().Add(30 * time.Second)
	for {
		rows, err := db.Pool.Query(ctx, `SELECT id, state::text, attempt, coalesce((args->>'sweep')::bool, false),
				coalesce(attempted_by[array_length(attempted_by, 1)], ''), coalesce(errors::text, ''), finalized_at IS NOT NULL
			FROM river_job WHERE kind = 'knowledge_embed' ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		jobs = jobs[:0]
		open := 0
		for rows.Next() {
			var j job
			if err := rows.Scan(&j.id, &j.state, &j.attempt, &j.sweep, &j.by, &j.errors, &j.finalized); err != nil {
				t.Fatal(err)
			}
			jobs = append(jobs, j)
			if !j.sweep && !j.finalized {
				open++
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d embed jobs queued by writes still not finished after 30 s: %+v", open, jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	queued, sweeps := 0, 0
	byRunner := map[string]int{}
	for _, j := range jobs {
		if j.sweep {
			sweeps++
		} else {
			queued++
		}
		switch j.state {
		case "completed":
			if j.attempt != 1 || j.errors != "" {
				t.Errorf("embed job %d (sweep %t) completed on attempt %d, errors %s", j.id, j.sweep, j.attempt, j.errors)
			}
			byRunner[j.by]++
		case "available", "running", "scheduled", "pending":
			if !j.sweep {
				t.Errorf("embed job %d queued by a write is %s", j.id, j.state)
			}
		default: // retryable, discarded, cancelled
			t.Errorf("embed job %d (sweep %t) is %s after %d attempts: %s", j.id, j.sweep, j.state, j.attempt, j.errors)
		}
	}
	if queued < total {
		t.Errorf("%d embed jobs queued by writes, want at least %d (one per episode)", queued, total)
	}
	var failedJobs int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE state IN ('discarded', 'cancelled', 'retryable')`).Scan(&failedJobs); err != nil {
		t.Fatal(err)
	}
	if failedJobs > 0 {
		t.Errorf("%d River jobs (any kind) are discarded, cancelled or retryable", failedJobs)
	}
	t.Logf("%d episodes embedded in %d /api/embed calls; %d jobs queued by writes, %d sweeps; completed by runner: %v",
		total, ollama.Calls(), queued, sweeps, byRunner)
}

// soWatcher is a client session that records the resource updates it is told of.
type soWatcher struct {
	name    string
	cs      *sdk.ClientSession
	proto   string
	updates chan string   // URIs of notifications/resources/updated
	acks    chan []string // URIs acknowledged on 2026-07-28 subscriptions/listen streams
}

func soWatch(t *testing.T, name string, tr sdk.Transport) *soWatcher {
	t.Helper()
	w := &soWatcher{name: name, updates: make(chan string, 100), acks: make(chan []string, 100)}
	client := sdk.NewClient(&sdk.Implementation{Name: "cairn-scaleout-watcher", Version: "1"}, &sdk.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			select {
			case w.updates <- req.Params.URI:
			default:
			}
		},
	})
	// Under 2026-07-28, Subscribe returns before the server has registered anything; its
	// acknowledgement on the listen stream says it has.
	client.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if p, ok := req.GetParams().(*sdk.SubscriptionsAcknowledgedParams); ok && method == "notifications/subscriptions/acknowledged" {
				select {
				case w.acks <- p.Notifications.ResourceSubscriptions:
				default:
				}
			}
			return next(ctx, method, req)
		}
	})
	// The SSE stream lives as long as the Connect context: do not cancel it.
	cs, err := client.Connect(context.Background(), tr, nil)
	if err != nil {
		t.Fatalf("connect %s: %v", name, err)
	}
	t.Cleanup(func() { cs.Close() })
	w.cs, w.proto = cs, cs.InitializeResult().ProtocolVersion
	w.name += " (protocol " + w.proto + ")"
	return w
}

// subscribe subscribes and, under 2026-07-28, waits for the acknowledgement.
func (w *soWatcher) subscribe(t *testing.T, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}); err != nil {
		t.Fatalf("%s: subscribe to %s: %v", w.name, uri, err)
	}
	if w.proto < "2026-07-28" {
		return
	}
	for {
		select {
		case uris := <-w.acks:
			if slices.Contains(uris, uri) {
				return
			}
		case <-ctx.Done():
			t.Fatalf("%s: subscription to %s not acknowledged", w.name, uri)
		}
	}
}

// soSubscription: sessions subscribed to a workflow on server 1 — over SSE (resources/subscribe)
// and over Streamable HTTP (2026-07-28's subscriptions/listen) — hear of saves made through
// servers 2 and 3, delivered by PostgreSQL's NOTIFY, and read the new head on server 1.
func soSubscription(t *testing.T, c *soCluster) {
	const wait = 10 * time.Second
	one, two, three := c.servers[0], c.servers[1], c.servers[2]
	// Left open through the kill and the SIGTERM: shutting down must close it.
	sse := soWatch(t, "SSE session on "+one.name, &sdk.SSEClientTransport{Endpoint: one.base + "/sse", HTTPClient: c.http})
	listen := soWatch(t, "Streamable HTTP session on "+one.name, &sdk.StreamableClientTransport{Endpoint: one.base + "/mcp", HTTPClient: c.http})
	if listen.proto < "2026-07-28" {
		t.Fatalf("%s: want 2026-07-28 (stateless /mcp delivers updates only on a subscriptions/listen stream)", listen.name)
	}

	id := "so-watched"
	uri := "cairn://workflows/" + id
	v := soInt(soOK(t, three, "workflow_start", map[string]any{"name": "watched", "workflow_id": id})["version"])
	sse.subscribe(t, uri)
	listen.subscribe(t, uri)

	expect := func(via *soServer) {
		t.Helper()
		began := time.Now()
		saved := soOK(t, via, "checkpoint_save", map[string]any{"workflow_id": id, "node_id": "step-via-" + via.name,
			"state": map[string]any{"via": via.name}, "expected_version": v})
		v = soInt(saved["version"])
		for _, w := range []*soWatcher{sse, listen} {
			select {
			case got := <-w.updates:
				if got != uri {
					t.Fatalf("save through %s: %s notified of %s, want %s", via.name, w.name, got, uri)
				}
				t.Logf("save through %s: %s notified %s after the call began", via.name, w.name, time.Since(began).Round(time.Millisecond))
			case <-time.After(wait):
				t.Fatalf("save through %s: no notifications/resources/updated of %s to the %s within %s", via.name, uri, w.name, wait)
			}
		}
		// What the subscriber re-reads on server 1 is the save made elsewhere.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		res, err := sse.cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
		if err != nil || len(res.Contents) != 1 {
			t.Fatalf("read %s on %s: %v %v", uri, one.name, res, err)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(res.Contents[0].Text), &m); err != nil {
			t.Fatal(err)
		}
		head, _ := m["head_checkpoint"].(map[string]any)
		if head == nil || head["checkpoint_id"] != saved["checkpoint_id"] {
			t.Fatalf("%s read on %s after the save through %s: head %v, saved %v", uri, one.name, via.name, m["head_checkpoint"], saved["checkpoint_id"])
		}
	}
	expect(two)
	expect(three)
	for _, w := range []*soWatcher{sse, listen} {
		select {
		case got := <-w.updates:
			t.Fatalf("%s: an extra notification of %s", w.name, got)
		default:
		}
	}
	// Both sessions stay open through the SIGTERM: serve must end them, not wait for them.
}

// soKillMidRun: while goroutines write through all three servers, server 3 is SIGKILLed.
// Checkpoint saves that got no answer are retried on the next server with the same
// idempotency_key and expected_version; episodes that got no answer are not retried (the tool
// has no idempotency key) but checked. Every acknowledged write is in the database, once.
func soKillMidRun(t *testing.T, c *soCluster, db *testdb.DB) {
	const (
		cpWriters = 6
		cpSaves   = 12
		epWriters = 3
		epAdds    = 8
		callWait  = 15 * time.Second // the longest a call whose server died mid-answer may wait
	)
	victim := c.servers[2]
	if victim.done() {
		t.Fatalf("%s is not running", victim.name)
	}

	type cpWrite struct {
		key, checkpoint string
		version         int64
		duplicate       bool
		attempts        []string // what each attempt got, for failure messages
	}
	type epWrite struct {
		content string
		id      int64 // 0: no answer (uncertain)
		via     string
		err     string
	}
	cpAcks := make([][]cpWrite, cpWriters)
	epResults := make([][]epWrite, epWriters)
	starts := make([]int64, cpWriters)
	for g := range cpWriters {
		id := fmt.Sprintf("so-kill-%d", g)
		starts[g] = soInt(soOK(t, c.servers[g%2], "workflow_start", map[string]any{"name": "kill", "workflow_id": id})["version"])
	}

	var acked, noAnswer, refused, retried atomic.Int64
	missed := func(r soResult) {
		noAnswer.Add(1)
		if strings.Contains(r.err.Error(), "connection refused") {
			refused.Add(1)
		}
	}
	killAt := int64(cpWriters*cpSaves+epWriters*epAdds) / 3
	killed := make(chan time.Time, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for acked.Load() < killAt {
			select {
			case <-stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
		}
		victim.cmd.Process.Signal(syscall.SIGKILL)
		killed <- time.Now()
	}()

	var wg sync.WaitGroup
	for g := range cpWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := fmt.Sprintf("so-kill-%d", g)
			seen := starts[g]
			for step := range cpSaves {
				w := cpWrite{key: fmt.Sprintf("%s-step-%d-%s", id, step, soRandHex(4))}
				args := map[string]any{"workflow_id": id, "node_id": fmt.Sprintf("step-%d", step),
					"state": map[string]any{"step": step, "messages": []any{"m", step}}, "expected_version": seen, "idempotency_key": w.key}
				for attempt := 0; ; attempt++ {
					if attempt == 6 {
						t.Errorf("%s step %d: no answer after %d attempts: %v", id, step, attempt, w.attempts)
						return
					}
					s := c.servers[(g+step+attempt)%3]
					r := soCall(s.cs, callWait, "checkpoint_save", args)
					w.attempts = append(w.attempts, s.name+": "+r.String())
					if r.err != nil {
						missed(r)
						retried.Add(1)
						continue
					}
					if r.isErr {
						t.Errorf("%s step %d (expected_version %d, key %s): refused: %v", id, step, seen, w.key, w.attempts)
						return
					}
					w.checkpoint, _ = r.data["checkpoint_id"].(string)
					w.version = soInt(r.data["version"])
					w.duplicate = r.data["duplicate"] == true
					break
				}
				if w.version != seen+1 || w.checkpoint == "" {
					t.Errorf("%s step %d: saved as version %d (want %d), checkpoint %q: %v", id, step, w.version, seen+1, w.checkpoint, w.attempts)
					return
				}
				seen = w.version
				cpAcks[g] = append(cpAcks[g], w)
				acked.Add(1)
			}
		}()
	}
	for g := range epWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range epAdds {
				s := c.servers[(g+k)%3]
				e := epWrite{content: fmt.Sprintf("[so-kill-ep-%d-%d-%s] the deploy of checkout stalled", g, k, soRandHex(4)), via: s.name}
				r := soCall(s.cs, callWait, "knowledge_add_episode", map[string]any{"content": e.content, "episode_type": "deployment"})
				switch {
				case r.err != nil:
					missed(r)
					e.err = r.String()
				case r.isErr:
					t.Errorf("knowledge_add_episode through %s refused: %s", s.name, r.text)
					return
				default:
					e.id = soInt(r.data["id"])
					acked.Add(1)
				}
				epResults[g] = append(epResults[g], e)
			}
		}()
	}
	wg.Wait()
	var killTime time.Time
	select {
	case killTime = <-killed:
	default:
		t.Fatalf("%s was never killed: %d writes acknowledged, the kill was due at %d", victim.name, acked.Load(), killAt)
	}
	select {
	case <-victim.exited:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10 s after SIGKILL", victim.name)
	}
	if t.Failed() {
		return
	}
	t.Logf("killed %s after %d acknowledged writes (%s); %d calls got no answer (%d cut off in flight, %d refused), %d checkpoint saves retried elsewhere",
		victim.name, killAt, killTime.Format("15:04:05.000"), noAnswer.Load(), noAnswer.Load()-refused.Load(), refused.Load(), retried.Load())
	if retried.Load() == 0 {
		t.Errorf("no checkpoint save was retried: the writers never met the dead server")
	}

	ctx := context.Background()
	live := c.servers[0]
	dups := 0
	for g := range cpWriters {
		id := fmt.Sprintf("so-kill-%d", g)
		if len(cpAcks[g]) != cpSaves {
			t.Errorf("%s: %d saves acknowledged, want %d", id, len(cpAcks[g]), cpSaves)
			continue
		}
		final := starts[g] + cpSaves
		if v := soInt(soOK(t, live, "workflow_get", map[string]any{"workflow_id": id})["version"]); v != final {
			t.Errorf("%s: version %d, want %d (one per acknowledged save, no more)", id, v, final)
		}
		saved := soCheckHistory(t, live, id, final)
		if len(saved) != cpSaves {
			t.Errorf("%s: %d CheckpointSaved events, want %d", id, len(saved), cpSaves)
		}
		for _, w := range cpAcks[g] {
			if w.duplicate {
				dups++ // the first attempt committed on the dead server; the retry found it
			}
			if saved[w.version] != w.checkpoint {
				t.Errorf("%s: acknowledged save %s (version %d) is not in the history (which has %q): %v", id, w.checkpoint, w.version, saved[w.version], w.attempts)
			}
			var n int
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1 AND id = $2 AND version = $3`,
				id, w.checkpoint, w.version).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%s: acknowledged checkpoint %s (version %d) found %d times in workflow_checkpoints", id, w.checkpoint, w.version, n)
			}
			if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM event_idempotency WHERE stream_id = $1 AND key = $2`,
				"workflow:"+id, w.key).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n != 1 {
				t.Errorf("%s: idempotency key %s recorded %d times", id, w.key, n)
			}
		}
		var rows int
		if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM workflow_checkpoints WHERE workflow_id = $1`, id).Scan(&rows); err != nil {
			t.Fatal(err)
		}
		if rows != cpSaves {
			t.Errorf("%s: %d checkpoints in workflow_checkpoints, want %d", id, rows, cpSaves)
		}
	}

	absent, present := 0, 0
	var stored []int64 // every kill-phase episode in the database
	for _, es := range epResults {
		for _, e := range es {
			var n int
			var ids []int64
			if err := db.Pool.QueryRow(ctx, `SELECT count(*), coalesce(array_agg(id), '{}') FROM episodes WHERE content = $1`, e.content).Scan(&n, &ids); err != nil {
				t.Fatal(err)
			}
			switch {
			case e.id != 0 && (n != 1 || ids[0] != e.id):
				t.Errorf("acknowledged episode #%d through %s: found as %v", e.id, e.via, ids)
			case e.id == 0 && n > 1:
				t.Errorf("episode through %s that got no answer (%s) stored %d times: %v", e.via, e.err, n, ids)
			case e.id == 0 && n == 1:
				present++
			case e.id == 0:
				absent++
			}
			stored = append(stored, ids...)
		}
	}
	t.Logf("checkpoint saves: %d acknowledged (%d of them as duplicates of a first attempt the dead server committed); episodes without an answer: %d stored, %d not",
		cpWriters*cpSaves, dups, present, absent)

	// The survivors embed the episodes written around the kill, all but any the dead server had
	// claimed: those wait for their lease (5 minutes) to expire, by design. A survivor holds its
	// lease for milliseconds, so a lease that lasts is the dead server's.
	var embedded, held, waiting, heldBefore int
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := db.Pool.QueryRow(ctx, `SELECT
				count(*) FILTER (WHERE embed_state = 'embedded' AND embedded_hash = content_hash),
				count(*) FILTER (WHERE embed_state = 'pending' AND embed_lease_until > now()),
				count(*) FILTER (WHERE embed_state <> 'embedded' AND NOT (embed_state = 'pending' AND coalesce(embed_lease_until > now(), false)))
			FROM episodes WHERE id = ANY($1)`, stored).Scan(&embedded, &held, &waiting)
		if err != nil {
			t.Fatal(err)
		}
		if waiting == 0 && held == heldBefore {
			break
		}
		heldBefore = held
		if time.Now().After(deadline) {
			rows, _ := db.Pool.Query(ctx, `SELECT id, embed_state, embed_lease_until, updated_at, coalesce(embed_error, '') FROM episodes
				WHERE id = ANY($1) AND embed_state <> 'embedded' ORDER BY id`, stored)
			var seen []string
			for rows.Next() {
				var id int64
				var state, embedErr string
				var lease *time.Time
				var updated time.Time
				rows.Scan(&id, &state, &lease, &updated, &embedErr)
				seen = append(seen, fmt.Sprintf("#%d %s lease=%v updated=%s %s", id, state, lease, updated.Format("15:04:05.000"), embedErr))
			}
			rows.Close()
			t.Fatalf("episodes written around the kill (at %s): %d embedded, %d leased, %d neither after 20 s: %v\nembed jobs: %s",
				killTime.Format("15:04:05.000"), embedded, held, waiting, seen, soEmbedJobs(t, db))
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Logf("episodes written around the kill: %d embedded by the survivors, %d left to the dead server's lease", embedded, held)
}

// soEmbedJobs describes the embed jobs, for failure messages.
func soEmbedJobs(t *testing.T, db *testdb.DB) string {
	rows, err := db.Pool.Query(context.Background(), `SELECT id, state::text, attempt, args::text, coalesce(attempted_by::text, ''),
			to_char(created_at, 'HH24:MI:SS.MS'), coalesce(to_char(attempted_at, 'HH24:MI:SS.MS'), ''), coalesce(to_char(finalized_at, 'HH24:MI:SS.MS'), '')
		FROM river_job WHERE kind = 'knowledge_embed' ORDER BY id`)
	if err != nil {
		return err.Error()
	}
	defer rows.Close()
	var b strings.Builder
	for rows.Next() {
		var id int64
		var attempt int
		var state, args, by, created, attempted, finalized string
		if err := rows.Scan(&id, &state, &attempt, &args, &by, &created, &attempted, &finalized); err != nil {
			return err.Error()
		}
		fmt.Fprintf(&b, "\n  job %d %s attempt %d %s by %s created %s attempted %s finalized %s", id, state, attempt, args, by, created, attempted, finalized)
	}
	return b.String()
}

// soShutdown: SIGTERM stops every process still running promptly (nothing is slow in flight, so
// well within serve's grace periods), each exiting 0, with the SSE watcher still connected to
// server 1; none logged a panic, an error, a data race or an incomplete shutdown.
func soShutdown(t *testing.T, c *soCluster) {
	const prompt = 10 * time.Second // nothing slow is in flight: a few ms, 1 s with a -race binary
	// Connections the clients' pool opened but never used (a burst of concurrent calls leaves
	// some) would hold each server's http.Server.Shutdown for 5 s: net/http counts a connection
	// that has not sent its first request as active until then.
	c.transport.CloseIdleConnections()
	var running []*soProc
	began := time.Now()
	for _, p := range c.procs() {
		if !p.done() {
			running = append(running, p)
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.After(soStopWait)
	var stopped []string
	for _, p := range running {
		select {
		case <-p.exited:
			took := time.Since(began)
			stopped = append(stopped, fmt.Sprintf("%s %s", p.name, took.Round(time.Millisecond)))
			if took > prompt {
				t.Errorf("%s took %s to stop after SIGTERM, want under %s", p.name, took.Round(time.Millisecond), prompt)
			}
			if p.waitErr != nil {
				t.Errorf("%s: exit after SIGTERM: %v", p.name, p.waitErr)
			}
		case <-deadline:
			t.Errorf("%s did not stop within %s of SIGTERM", p.name, soStopWait)
		}
	}
	t.Logf("stopped after SIGTERM: %s", strings.Join(stopped, ", "))
	for _, p := range c.procs() {
		out := p.log.String()
		for _, bad := range []string{"panic:", "WARNING: DATA RACE", "level=ERROR", "graceful shutdown incomplete"} {
			if strings.Contains(out, bad) {
				t.Errorf("%s logged %q", p.name, bad)
			}
		}
	}
	var exitErr *exec.ExitError
	if v := c.servers[2]; !errors.As(v.waitErr, &exitErr) || exitErr.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Errorf("%s: want it killed by SIGKILL, got %v", v.name, v.waitErr)
	}
}
