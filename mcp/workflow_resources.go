package mcp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/eventstore"
)

// Every workflow is the resource cairn://workflows/{id}. Subscribers learn of changes from
// PostgreSQL itself: cairn_append_events runs pg_notify('cairn_events', stream_id) at commit, so
// a change made by any cairn process on the database, or by raw SQL (appending events, or
// writing the tables, which triggers record as events), reaches every process listening. One
// listener per Server maps "workflow:<id>" to the URI and calls the SDK's ResourceUpdated, which
// notifies the sessions that subscribed.
//
// Delivery by transport: stdio and SSE sessions live as long as their connection, so both
// resources/subscribe (protocol up to 2025-11-25) and subscriptions/listen (2026-07-28) work.
// cairn's Streamable HTTP endpoint is stateless: a session lasts one POST, so a
// resources/subscribe there could never be answered with a notification and is refused; a
// 2026-07-28 client's subscriptions/listen keeps its POST open and is notified on that stream.

const (
	workflowURIPrefix = "cairn://workflows/"
	// subscribeWait bounds how long a subscription waits for the listener's first LISTEN, so a
	// database that cannot be reached fails the subscription instead of hanging it.
	subscribeWait = 10 * time.Second
	// listenPing is how long the listener waits in silence before checking that its
	// connection still answers: a peer that vanished without a FIN is otherwise noticed only by
	// TCP keepalive, many minutes later.
	listenPing = 30 * time.Second
	// maxListenWait caps the backoff between attempts to listen again.
	maxListenWait = 30 * time.Second
)

// workflowURI is the canonical URI of a workflow: its id with every byte outside RFC 3986's
// unreserved set percent-encoded, so any id (thread ids often hold ':' or '/') fits the
// template's {id}.
func workflowURI(id string) string {
	var b strings.Builder
	b.WriteString(workflowURIPrefix)
	for i := 0; i < len(id); i++ {
		c := id[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// workflowIDOf returns the workflow id a URI names, if it names one.
func workflowIDOf(uri string) (string, bool) {
	rest, ok := strings.CutPrefix(uri, workflowURIPrefix)
	if !ok || rest == "" || strings.ContainsAny(rest, "/?#") {
		return "", false
	}
	id, err := url.PathUnescape(rest)
	if err != nil || id == "" {
		return "", false
	}
	return id, true
}

func (s *Server) addWorkflowResources() {
	s.srv.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:  "workflow",
		Title: "Workflow",
		Description: "A workflow as JSON (what workflow_get returns) plus head_checkpoint {checkpoint_id, node_id, created_at}, " +
			"the checkpoint checkpoint_load resumes from, without its state. The id is percent-encoded. " +
			"Subscribe to be notified whenever the workflow changes, whichever process changed it.",
		MIMEType:    "application/json",
		URITemplate: workflowURIPrefix + "{id}",
	}, s.readWorkflowResource)
}

// headCheckpoint is the part of the head checkpoint a watcher needs to decide whether to load it.
type headCheckpoint struct {
	ID        string    `json:"checkpoint_id"`
	NodeID    string    `json:"node_id,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

// workflowResource is workflow_get's object with one more key, so a client decodes both alike.
type workflowResource struct {
	*checkpoint.Workflow
	HeadCheckpoint *headCheckpoint `json:"head_checkpoint"` // null before the first checkpoint
}

func (s *Server) readWorkflowResource(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	uri := req.Params.URI
	id, ok := workflowIDOf(uri)
	if !ok {
		return nil, resourceNotFound(req, uri, "")
	}
	w, err := s.checkpoints.Get(ctx, id)
	if err != nil {
		return nil, workflowReadError(req, uri, err)
	}
	out := workflowResource{Workflow: w}
	top := ""
	// The newest top-level checkpoint is the head: what checkpoint_load returns by default.
	cps, err := s.checkpoints.List(ctx, checkpoint.ListParams{WorkflowID: id, Namespace: &top, Limit: 1})
	if err != nil {
		return nil, workflowReadError(req, uri, err)
	}
	if len(cps) == 1 {
		out.HeadCheckpoint = &headCheckpoint{ID: cps[0].ID, NodeID: cps[0].NodeID, CreatedAt: cps[0].CreatedAt}
	}
	return jsonResource(uri, out)
}

func workflowReadError(req sdk.Request, uri string, err error) error {
	var nf *checkpoint.NotFoundError
	var ie *callerr.Input
	if errors.As(err, &nf) || errors.As(err, &ie) {
		return resourceNotFound(req, uri, err.Error())
	}
	return fmt.Errorf("read %s: %w", uri, err)
}

// enableWorkflowSubscriptions sets the handlers that make the server advertise
// resources.subscribe. It must run before sdk.NewServer; the watch learns the SDK server after.
func (s *Server) enableWorkflowSubscriptions(o *sdk.ServerOptions) {
	s.watch = &workflowWatch{pool: s.system, log: s.log, subs: map[string]map[*sdk.ServerSession]struct{}{},
		sessions: map[*sdk.ServerSession]bool{}, queued: map[string]bool{}}
	o.SubscribeHandler = s.subscribeWorkflow
	o.UnsubscribeHandler = s.unsubscribeWorkflow
}

func (s *Server) subscribeWorkflow(ctx context.Context, req *sdk.SubscribeRequest) error {
	uri := req.Params.URI
	// A stateless Streamable HTTP session ends with this very request, so no notification could
	// ever reach it; its initialize result did not offer subscriptions (capabilities.go).
	// subscriptions/listen builds its request without HTTP headers, so it is not refused here.
	if overStatelessHTTP(req) {
		return methodNotFound("resources/subscribe is not available over stateless Streamable HTTP: the session ends with this request, so no update could be delivered; "+
			"connect over stdio or SSE (/sse), or use protocol %s, whose subscriptions/listen keeps a stream open", protocolStateless)
	}
	id, ok := workflowIDOf(uri)
	if !ok {
		return invalidParams("cannot subscribe to %s: only workflows can be subscribed, as %s{id} (the URI workflow resources are read at)", uri, workflowURIPrefix)
	}
	// The SDK keys subscriptions by the exact string, and notifications carry the string cairn
	// makes; a second spelling of the same id would be notified under a URI the client never used.
	if canon := workflowURI(id); canon != uri {
		return invalidParams("cannot subscribe to %s: write the workflow id percent-encoded as cairn does: %s", uri, canon)
	}
	if _, err := s.checkpoints.Get(ctx, id); err != nil {
		return workflowReadError(req, uri, err)
	}
	return s.watch.add(ctx, s.srv, req.Session, id)
}

// unsubscribeWorkflow forgets a subscription. It is idempotent and ignores ctx, which is already
// cancelled when a subscriptions/listen stream ends.
func (s *Server) unsubscribeWorkflow(_ context.Context, req *sdk.UnsubscribeRequest) error {
	if id, ok := workflowIDOf(req.Params.URI); ok {
		s.watch.remove(req.Session, id)
	}
	return nil
}

// workflowWatch keeps the subscriptions and runs the LISTEN connection while there are any.
//
// The listener starts with the first subscription rather than in New: most cairn processes
// (one-shot `cairn call`, stateless HTTP replicas serving old clients, tests) never see one and
// should not hold a connection for nothing. It stops when the last subscription goes and for
// good at Close. A subscription returns only once LISTEN is active, so no change committed after
// the client's subscribe succeeded can be missed.
type workflowWatch struct {
	pool *pgxpool.Pool
	log  *slog.Logger

	mu sync.Mutex
	// subs: workflow id → subscribed sessions, so that a notification for an unwatched
	// workflow costs one map lookup. Subscriptions use the canonical URI, workflowURI(id).
	subs     map[string]map[*sdk.ServerSession]struct{}
	sessions map[*sdk.ServerSession]bool // sessions whose end is being waited for
	// pending lists the ids changed and not yet notified, in commit order (NOTIFY's order), so
	// that a session is told of changes in the order they happened; queued is its set.
	pending []string
	queued  map[string]bool
	run     *listenRun // nil while nobody subscribes
	closed  bool
	wg      sync.WaitGroup // the goroutines of every run
}

// listenRun is one lifetime of the listener, from the first subscription to the last.
type listenRun struct {
	cancel  context.CancelFunc
	stopped <-chan struct{} // closed when the run is cancelled
	live    chan struct{}   // closed at the first successful LISTEN
	kick    chan struct{}   // wakes the notifier; buffered, so one wake-up covers a burst
	lastErr error           // why the listener is not connected, under workflowWatch.mu
}

func (w *workflowWatch) add(ctx context.Context, srv *sdk.Server, ss *sdk.ServerSession, id string) error {
	uri := workflowURI(id)
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return errors.New("cairn is shutting down: subscriptions are closed")
	}
	if w.subs[id] == nil {
		w.subs[id] = map[*sdk.ServerSession]struct{}{}
	}
	w.subs[id][ss] = struct{}{}
	if !w.sessions[ss] {
		// The SDK forgets a session's subscriptions when it ends without telling the handlers;
		// mirror that, so the listener stops once nobody is left.
		w.sessions[ss] = true
		go func() {
			_ = ss.Wait() // how the session ended does not matter here, only that it did
			w.dropSession(ss)
		}()
	}
	run := w.run
	if run == nil {
		run = w.startLocked(srv)
	}
	w.mu.Unlock()

	timer := time.NewTimer(subscribeWait)
	defer timer.Stop()
	select {
	case <-run.live:
		return nil
	case <-run.stopped:
		w.remove(ss, id)
		return fmt.Errorf("subscribe to %s: cairn is shutting down", uri)
	case <-ctx.Done():
		w.remove(ss, id)
		return fmt.Errorf("subscribe to %s: %w", uri, ctx.Err())
	case <-timer.C:
		w.mu.Lock()
		err := run.lastErr
		w.mu.Unlock()
		w.remove(ss, id)
		return fmt.Errorf("subscribe to %s: cannot listen for workflow changes within %s: %v", uri, subscribeWait, err)
	}
}

func (w *workflowWatch) remove(ss *sdk.ServerSession, id string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.subs[id], ss)
	if len(w.subs[id]) == 0 {
		delete(w.subs, id)
	}
	w.stopIfIdleLocked()
}

func (w *workflowWatch) dropSession(ss *sdk.ServerSession) {
	w.mu.Lock()
	defer w.mu.Unlock()
	delete(w.sessions, ss)
	for id, set := range w.subs {
		delete(set, ss)
		if len(set) == 0 {
			delete(w.subs, id)
		}
	}
	w.stopIfIdleLocked()
}

func (w *workflowWatch) stopIfIdleLocked() {
	if len(w.subs) == 0 && w.run != nil {
		w.run.cancel()
		w.run = nil
		w.pending, w.queued = nil, map[string]bool{}
	}
}

// close stops the listener and waits for it; later subscriptions are refused.
func (w *workflowWatch) close() {
	w.mu.Lock()
	w.closed = true
	if w.run != nil {
		w.run.cancel()
		w.run = nil
	}
	w.mu.Unlock()
	w.wg.Wait()
}

func (w *workflowWatch) startLocked(srv *sdk.Server) *listenRun {
	ctx, cancel := context.WithCancel(context.Background())
	run := &listenRun{cancel: cancel, stopped: ctx.Done(), live: make(chan struct{}), kick: make(chan struct{}, 1)}
	w.run = run
	w.wg.Add(2)
	go w.listen(ctx, run)
	go w.notify(ctx, run, srv)
	return run
}

// listen holds a LISTEN connection until ctx ends, reconnecting with backoff when it drops.
func (w *workflowWatch) listen(ctx context.Context, run *listenRun) {
	defer w.wg.Done()
	backoff := 100 * time.Millisecond
	connected := false
	for ctx.Err() == nil {
		conn, err := w.connect(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.mu.Lock()
			run.lastErr = err
			w.mu.Unlock()
			w.log.Warn("workflow subscriptions: cannot listen for changes; retrying", "err", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, maxListenWait)
			continue
		}
		backoff = 100 * time.Millisecond
		if !connected {
			connected = true
			close(run.live)
		} else {
			// Changes committed while the connection was down were announced to nobody: tell
			// every subscriber to look again rather than let one miss an update.
			w.mu.Lock()
			for id := range w.subs {
				w.queueLocked(id)
			}
			w.mu.Unlock()
			kick(run)
			w.log.Info("workflow subscriptions: listening again; every subscriber is told to re-read")
		}
		err = w.receive(ctx, conn, run)
		closeConn(conn)
		if ctx.Err() != nil {
			return
		}
		w.log.Warn("workflow subscriptions: lost the listening connection; reconnecting", "err", err)
	}
}

// connect takes a connection out of the pool for good (Hijack): it would otherwise occupy one of
// the pool's slots for as long as anyone subscribes, and pool.Close would wait on it.
func (w *workflowWatch) connect(ctx context.Context) (*pgx.Conn, error) {
	pc, err := w.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("acquire a connection: %w", err)
	}
	conn := pc.Hijack()
	if _, err := conn.Exec(ctx, listenEventsSQL); err != nil {
		closeConn(conn)
		return nil, fmt.Errorf("LISTEN %s: %w", eventstore.Channel, err)
	}
	return conn, nil
}

// closeConn closes a connection, giving a dead server a few seconds at most.
func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn.Close(ctx)
}

// receive reads notifications until the connection fails or ctx ends, queueing those of
// subscribed workflows for the notifier.
func (w *workflowWatch) receive(ctx context.Context, conn *pgx.Conn, run *listenRun) error {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, context.DeadlineExceeded) {
			// pgx's deadline handler leaves the connection usable after a timeout.
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("ping: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		id, ok := strings.CutPrefix(n.Payload, "workflow:")
		if !ok {
			continue
		}
		w.mu.Lock()
		_, watched := w.subs[id]
		if watched {
			w.queueLocked(id)
		}
		w.mu.Unlock()
		if watched {
			kick(run)
		}
	}
}

func (w *workflowWatch) queueLocked(id string) {
	if !w.queued[id] {
		w.queued[id] = true
		w.pending = append(w.pending, id)
	}
}

func kick(run *listenRun) {
	select {
	case run.kick <- struct{}{}:
	default:
	}
}

// notify sends resources/updated for each changed workflow. It runs apart from receive so that a
// slow client (the SDK waits up to 10 s per session) never stalls reading from PostgreSQL, and
// a burst of changes to one workflow collapses into one notification: "updated" means "read
// again", not "here is each event".
func (w *workflowWatch) notify(ctx context.Context, run *listenRun, srv *sdk.Server) {
	defer w.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-run.kick:
		}
		var uris []string
		w.mu.Lock()
		for _, id := range w.pending {
			if _, ok := w.subs[id]; ok {
				uris = append(uris, workflowURI(id))
			}
		}
		w.pending, w.queued = nil, map[string]bool{}
		w.mu.Unlock()
		for _, uri := range uris {
			if err := srv.ResourceUpdated(ctx, &sdk.ResourceUpdatedNotificationParams{URI: uri}); err != nil {
				w.log.Warn("workflow subscriptions: notify", "uri", uri, "err", err)
			}
		}
	}
}
