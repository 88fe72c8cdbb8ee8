package mcp_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/testbin"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// notifyWait is how long a test waits for a notification: generous, because -race and a busy
// machine slow everything, and a passing test never waits it out.
const notifyWait = 20 * time.Second

// legacyProtocol makes the go-sdk client use resources/subscribe (one request, whose error the
// client sees) instead of 2026-07-28's subscriptions/listen stream.
const legacyProtocol = "2025-11-25"

// recorder collects what a client is told about resources.
type recorder struct {
	updates chan string   // URIs of notifications/resources/updated
	acks    chan []string // URIs acknowledged on subscriptions/listen streams
}

func newRecorder() *recorder {
	return &recorder{updates: make(chan string, 1000), acks: make(chan []string, 1000)}
}

// client is a go-sdk client that feeds the recorder.
func (r *recorder) client() *sdk.Client {
	c := sdk.NewClient(&sdk.Implementation{Name: "cairn-test", Version: "1"}, &sdk.ClientOptions{
		ResourceUpdatedHandler: func(_ context.Context, req *sdk.ResourceUpdatedNotificationRequest) {
			r.updates <- req.Params.URI
		},
	})
	// Under 2026-07-28 Subscribe returns before the server has registered anything; the
	// acknowledgement on the listen stream is the only sign that it has.
	c.AddReceivingMiddleware(func(next sdk.MethodHandler) sdk.MethodHandler {
		return func(ctx context.Context, method string, req sdk.Request) (sdk.Result, error) {
			if p, ok := req.GetParams().(*sdk.SubscriptionsAcknowledgedParams); ok && method == "notifications/subscriptions/acknowledged" {
				r.acks <- p.Notifications.ResourceSubscriptions
			}
			return next(ctx, method, req)
		}
	})
	return c
}

// next returns the URI of the next update notification.
func (r *recorder) next(t *testing.T, why string) string {
	t.Helper()
	select {
	case uri := <-r.updates:
		return uri
	case <-time.After(notifyWait):
		t.Fatalf("%s: no notifications/resources/updated within %s", why, notifyWait)
		return ""
	}
}

// expect waits for an update of uri, failing on an update of anything else first.
func (r *recorder) expect(t *testing.T, uri, why string) {
	t.Helper()
	if got := r.next(t, why); got != uri {
		t.Fatalf("%s: got an update of %s, want %s", why, got, uri)
	}
}

// stdioWatcher is stdioClient with a recording client and a chosen protocol version ("" for
// the newest).
func stdioWatcher(t *testing.T, db *testdb.DB, version string) (*sdk.ClientSession, *recorder) {
	t.Helper()
	cmd := exec.Command(cairnBin, "serve", "--database-url", db.URL)
	cmd.Env = cleanEnv()
	stderr := &testbin.Logs{}
	cmd.Stderr = stderr
	rec := newRecorder()
	cs, err := rec.client().Connect(context.Background(), &sdk.CommandTransport{Command: cmd}, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect to cairn over stdio: %v\nstderr:\n%s", err, stderr)
	}
	t.Cleanup(func() {
		cs.Close()
		if t.Failed() {
			t.Logf("cairn stderr:\n%s", stderr)
		}
	})
	return cs, rec
}

// httpWatcher connects a recording client to an HTTP endpoint ("sse" or "http").
func httpWatcher(t *testing.T, baseURL, transport, version string) (*sdk.ClientSession, *recorder) {
	t.Helper()
	var tr sdk.Transport = &sdk.SSEClientTransport{Endpoint: baseURL + "/sse"}
	if transport == "http" {
		tr = &sdk.StreamableClientTransport{Endpoint: baseURL + "/mcp"}
	}
	rec := newRecorder()
	cs, err := rec.client().Connect(context.Background(), tr, &sdk.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatalf("connect over %s: %v", transport, err)
	}
	t.Cleanup(func() { cs.Close() })
	return cs, rec
}

func modern(cs *sdk.ClientSession) bool {
	return cs.InitializeResult().ProtocolVersion >= "2026-07-28"
}

// subscribe subscribes and, under 2026-07-28, waits until the server has acknowledged it.
func subscribe(t *testing.T, cs *sdk.ClientSession, rec *recorder, uri string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), notifyWait)
	defer cancel()
	if err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri}); err != nil {
		t.Fatalf("subscribe %s: %v", uri, err)
	}
	if !modern(cs) {
		return
	}
	for {
		select {
		case uris := <-rec.acks:
			if slices.Contains(uris, uri) {
				return
			}
		case <-ctx.Done():
			// The go-sdk client drops a refused subscriptions/listen's error: this is all we learn.
			t.Fatalf("subscribe %s: not acknowledged within %s (refused by the server?)", uri, notifyWait)
		}
	}
}

// subscribeFails subscribes over the legacy protocol and returns the error, which must mention
// every one of wants.
func subscribeFails(t *testing.T, cs *sdk.ClientSession, uri string, wants ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), notifyWait)
	defer cancel()
	err := cs.Subscribe(ctx, &sdk.SubscribeParams{URI: uri})
	if err == nil {
		t.Fatalf("subscribe %s: want an error, got none", uri)
	}
	for _, w := range wants {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("subscribe %s: error %q does not mention %q", uri, err, w)
		}
	}
}

// listeners counts the connections listening for cairn's events on the test database.
func listeners(t *testing.T, db *testdb.DB) int {
	t.Helper()
	var n int
	err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN cairn_events' AND pid <> pg_backend_pid()`).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// eventually polls cond until it holds, failing after notifyWait.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(notifyWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, notifyWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func startWorkflow(t *testing.T, cp *checkpoint.Store, id string) string {
	t.Helper()
	w, err := cp.Start(context.Background(), checkpoint.StartParams{ID: id, Name: "watched", Actor: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return "cairn://workflows/" + w.ID
}

// TestWorkflowResourceRead: a workflow reads as workflow_get's JSON plus its head checkpoint,
// ids with reserved characters are percent-encoded, and a missing one is "resource not found".
func TestWorkflowResourceRead(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs := stdioClient(t, db)
	ctx := context.Background()

	caps := cs.InitializeResult().Capabilities
	if caps.Resources == nil || !caps.Resources.Subscribe {
		t.Fatalf("resources.subscribe is not advertised: %+v", caps.Resources)
	}
	tmpls, err := cs.ListResourceTemplates(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(tmpls.ResourceTemplates, func(rt *sdk.ResourceTemplate) bool { return rt.URITemplate == "cairn://workflows/{id}" }) {
		t.Fatalf("no cairn://workflows/{id} template among %d", len(tmpls.ResourceTemplates))
	}

	read := func(uri string) map[string]any {
		t.Helper()
		res, err := cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: uri})
		if err != nil {
			t.Fatalf("read %s: %v", uri, err)
		}
		if len(res.Contents) != 1 || res.Contents[0].MIMEType != "application/json" || res.Contents[0].URI != uri {
			t.Fatalf("read %s: contents %+v", uri, res.Contents)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(res.Contents[0].Text), &m); err != nil {
			t.Fatalf("read %s: %v: %s", uri, err, res.Contents[0].Text)
		}
		return m
	}

	id := "thread:1/a b"
	ok(t, cs, "workflow_start", map[string]any{"workflow_id": id, "name": "deploy"})
	uri := "cairn://workflows/thread%3A1%2Fa%20b"
	m := read(uri)
	if m["id"] != id || m["status"] != "running" || m["head_checkpoint"] != nil {
		t.Fatalf("before any checkpoint: %v", m)
	}
	saved := ok(t, cs, "checkpoint_save", map[string]any{"workflow_id": id, "node_id": "plan", "state": map[string]any{"secret": "not in the resource"}})
	m = read(uri)
	head, _ := m["head_checkpoint"].(map[string]any)
	if head == nil || head["checkpoint_id"] != saved["checkpoint_id"] || head["node_id"] != "plan" || head["created_at"] == nil {
		t.Fatalf("head_checkpoint = %v, saved %v", m["head_checkpoint"], saved)
	}
	if m["head_checkpoint_id"] != saved["checkpoint_id"] || num(m["version"]) != 2 {
		t.Fatalf("workflow fields: %v", m)
	}
	if b, _ := json.Marshal(m); strings.Contains(string(b), "not in the resource") {
		t.Fatalf("the resource carries the state: %s", b)
	}
	// The same as workflow_get, but for head_checkpoint.
	got := ok(t, cs, "workflow_get", map[string]any{"workflow_id": id})
	delete(m, "head_checkpoint")
	if a, b := fmt.Sprint(got), fmt.Sprint(m); a != b {
		t.Fatalf("resource %s\n!= workflow_get %s", b, a)
	}

	for _, missing := range []string{"cairn://workflows/nope", "cairn://workflows/" + strings.Repeat("x", 300)} {
		_, err = cs.ReadResource(ctx, &sdk.ReadResourceParams{URI: missing})
		var je *jsonrpc.Error
		if !errors.As(err, &je) || je.Code != jsonrpc.CodeInvalidParams {
			t.Fatalf("read %s: want resource not found, got %v", missing[:30], err)
		}
	}
}

// TestWorkflowSubscriptionStdio: a session subscribed over stdio (2026-07-28's
// subscriptions/listen) hears of every change to the workflow, whoever makes it: its own tool
// call, the Go API in another process, a second cairn process, raw SQL appending an event or
// updating the table — and again after its listening connection is killed.
func TestWorkflowSubscriptionStdio(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs, rec := stdioWatcher(t, db, "")
	if !modern(cs) {
		t.Fatalf("stdio negotiated %s; this test is for 2026-07-28", cs.InitializeResult().ProtocolVersion)
	}
	cp := checkpoint.New(db.Pool)
	ctx := context.Background()
	uri := startWorkflow(t, cp, "wf-stdio")
	subscribe(t, cs, rec, uri)

	ok(t, cs, "checkpoint_save", map[string]any{"workflow_id": "wf-stdio", "node_id": "a", "state": map[string]any{"n": 1}})
	rec.expect(t, uri, "tool call on the subscribed session")

	if _, err := cp.Interrupt(ctx, "wf-stdio", "approve?", nil, "test"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, uri, "Go API (checkpoint.Store) outside the cairn process")

	other := stdioClient(t, db)
	ok(t, other, "workflow_resume", map[string]any{"workflow_id": "wf-stdio", "response": "yes"})
	rec.expect(t, uri, "tool call in a second cairn process")

	if _, err := db.Pool.Exec(ctx, `SELECT cairn_append_events('workflow:wf-stdio', -1, ARRAY['Annotated'], ARRAY['{}'::jsonb], ARRAY['{}'::jsonb])`); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, uri, "raw SQL appending an event")
	// The predecessor's raw SQL on the projections, which triggers record as events.
	ok(t, other, "execute", map[string]any{"sql": `UPDATE workflows SET metadata = '{"raw": true}' WHERE id = $1`, "params": []any{"wf-stdio"}})
	rec.expect(t, uri, "raw UPDATE of the workflows table through execute")

	// Kill the listening connection: cairn listens again and, since changes may have gone
	// unannounced meanwhile, tells the subscriber to re-read; later changes arrive as before.
	if n := listeners(t, db); n != 1 {
		t.Fatalf("%d listening connections, want 1", n)
	}
	if _, err := db.Pool.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query = 'LISTEN cairn_events'`); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, uri, "re-read after the listener reconnected")
	eventually(t, "listening again", func() bool { return listeners(t, db) == 1 })
	if _, err := cp.Complete(ctx, "wf-stdio", nil, "test"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, uri, "change after the reconnect")
}

// TestWorkflowSubscriptionLegacy: over resources/subscribe (protocol 2025-11-25) refusals are
// clear errors, an unsubscribed URI is not notified, and the listener goes once nobody
// subscribes.
func TestWorkflowSubscriptionLegacy(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	cs, rec := stdioWatcher(t, db, legacyProtocol)
	if modern(cs) {
		t.Fatal("the client negotiated 2026-07-28")
	}
	cp := checkpoint.New(db.Pool)
	ctx := context.Background()

	subscribeFails(t, cs, "cairn://workflows/missing", `workflow "missing" does not exist`)
	subscribeFails(t, cs, "cairn://tables/public/workflows", "only workflows can be subscribed", "cairn://workflows/{id}")
	startWorkflow(t, cp, "a:b")
	subscribeFails(t, cs, "cairn://workflows/a:b", "cairn://workflows/a%3Ab")
	if n := listeners(t, db); n != 0 {
		t.Fatalf("refused subscriptions left %d listening connections", n)
	}

	one := "cairn://workflows/a%3Ab"
	two := startWorkflow(t, cp, "two")
	subscribe(t, cs, rec, one)
	subscribe(t, cs, rec, two)
	if _, err := cp.Fail(ctx, "a:b", "boom", "test"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, one, "Go API change")

	if err := cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: one}); err != nil {
		t.Fatal(err)
	}
	// Changes are announced in commit order, so hearing of the second proves the first, to
	// which nobody subscribes any more, was passed over.
	if err := cp.Delete(ctx, "a:b", "test"); err != nil {
		t.Fatal(err)
	}
	if _, err := cp.Complete(ctx, "two", nil, "test"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, two, "after unsubscribing from "+one)

	if err := cs.Unsubscribe(ctx, &sdk.UnsubscribeParams{URI: two}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "listener gone with the last subscription", func() bool { return listeners(t, db) == 0 })
}

// TestWorkflowSubscriptionSSE: over SSE each session hears only of what it subscribed to; Close
// ends the listener and refuses new subscriptions.
func TestWorkflowSubscriptionSSE(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := newServer(t, db, nil)
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	cp := checkpoint.New(db.Pool)
	ctx := context.Background()

	a, recA := httpWatcher(t, ts.URL, "sse", "")
	b, recB := httpWatcher(t, ts.URL, "sse", "")
	subscribeFails(t, a, "cairn://workflows/missing", "resource not found", "does not exist")
	one := startWorkflow(t, cp, "one")
	two := startWorkflow(t, cp, "two")
	subscribe(t, a, recA, one)
	subscribe(t, b, recB, two)

	if _, err := cp.Save(ctx, checkpoint.SaveParams{WorkflowID: "one", NodeID: "n", State: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	recA.expect(t, one, "SSE subscriber")
	if _, err := cp.Save(ctx, checkpoint.SaveParams{WorkflowID: "two", NodeID: "n", State: json.RawMessage(`{"x":1}`)}); err != nil {
		t.Fatal(err)
	}
	// b hears of "two" and, the notifier going in commit order, would have heard of "one" first.
	recB.expect(t, two, "SSE session that did not subscribe to "+one)
	select {
	case uri := <-recA.updates:
		t.Fatalf("session a was told of %s", uri)
	default:
	}

	srv.Close()
	eventually(t, "listener closed", func() bool { return listeners(t, db) == 0 })
	subscribeFails(t, a, two, "shutting down")
}

// TestWorkflowSubscriptionStreamableHTTP: cairn's /mcp is stateless. A resources/subscribe there
// is refused (its session ends with the request, so nothing could be delivered); a 2026-07-28
// client's subscriptions/listen holds its own stream open and is notified on it.
func TestWorkflowSubscriptionStreamableHTTP(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	srv := newServer(t, db, nil)
	t.Cleanup(srv.Close)
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	cp := checkpoint.New(db.Pool)
	uri := startWorkflow(t, cp, "wf-http")

	legacy, _ := httpWatcher(t, ts.URL, "http", legacyProtocol)
	if legacy.InitializeResult().Capabilities.Resources.Subscribe {
		t.Errorf("stateless Streamable HTTP at %s advertises resources.subscribe", legacyProtocol)
	}
	// Not offered, so a client that subscribes all the same calls a method that is not there.
	err := legacy.Subscribe(context.Background(), &sdk.SubscribeParams{URI: uri})
	var je *jsonrpc.Error
	if !errors.As(err, &je) || je.Code != jsonrpc.CodeMethodNotFound {
		t.Errorf("resources/subscribe over stateless Streamable HTTP: want method not found (-32601), got %v", err)
	}

	cs, rec := httpWatcher(t, ts.URL, "http", "")
	if !modern(cs) {
		t.Fatalf("Streamable HTTP negotiated %s", cs.InitializeResult().ProtocolVersion)
	}
	subscribe(t, cs, rec, uri)
	if _, err := cp.Complete(context.Background(), "wf-http", nil, "test"); err != nil {
		t.Fatal(err)
	}
	rec.expect(t, uri, "subscriptions/listen over stateless Streamable HTTP")
}
