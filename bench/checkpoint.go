package main

// The checkpoint benchmarks of issue 3: what saving a checkpoint costs against the least a Go
// program can do to store the same state (one INSERT), whether loading the newest state stays
// flat as a workflow's history grows, and how many bytes a step of a LangGraph-shaped workflow
// adds to the database.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/checkpoint"
)

// checkpointTables are the tables a checkpoint save writes to (checkpoint_writes stays empty:
// the benchmarks save no pending writes).
var checkpointTables = []string{"workflow_checkpoints", "checkpoint_blobs", "events", "event_streams", "workflow_steps"}

type checkpointResults struct {
	stateBytes                  int
	saveAPI, saveMCP, saveFloor stats

	depth                     int
	build                     time.Duration
	saveEarly, saveLate       stats // saves while building the deep history: the first and the last 1,000
	loadShallow, loadDeep     stats
	travelShallow, travelDeep stats
	travelCalls               int
	storage                   storageResult
}

type storageResult struct {
	steps                 int
	firstState, lastState int
	naiveText             int64 // the states' JSON text, summed
	naiveTable            int64 // the same states as rows of a plain jsonb table
	raw, vacuumed         int64 // growth of checkpointTables, before and after VACUUM FULL
	tables                []int64
}

// benchCheckpoints runs the three checkpoint benchmarks. It starts its own `cairn serve` for
// the MCP side rather than reusing run()'s session, so it can run last and leave the earlier
// measurements as they were before it existed.
func benchCheckpoints(ctx context.Context, pool *pgxpool.Pool, bin, url string, n, depth int) (*checkpointResults, error) {
	store := checkpoint.New(pool)
	r := &checkpointResults{depth: depth}
	if err := benchSave(ctx, pool, store, bin, url, n, r); err != nil {
		return nil, fmt.Errorf("save: %w", err)
	}
	// Before the deep history exists, so that VACUUM FULL rewrites little.
	st, err := benchStorage(ctx, pool, store, 200)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	r.storage = st
	if err := benchLoad(ctx, pool, store, n, r); err != nil {
		return nil, fmt.Errorf("load: %w", err)
	}
	return r, nil
}

// words returns about n bytes of random lowercase words. Random letters rather than repeated
// text, so that TOAST compression does not flatter the storage figures (pglz finds little to
// compress in them; real prose would compress somewhat).
func words(rng *rand.Rand, n int) string {
	var b strings.Builder
	for b.Len() < n {
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		for range 2 + rng.IntN(8) {
			b.WriteByte(byte('a' + rng.IntN(26)))
		}
	}
	return b.String()
}

func message(rng *rand.Rand, i, size int) string {
	role := [...]string{"user", "assistant", "tool"}[i%3]
	m, _ := json.Marshal(map[string]string{"id": fmt.Sprintf("msg-%d", i), "role": role, "content": words(rng, size-60)})
	return string(m)
}

// smallStates returns the ~1 KB state of step i: a short conversation and a plan that stay the
// same, a step counter and a tool result that change each step — two new channel values per save.
func smallStates() func(i int) json.RawMessage {
	rng := rand.New(rand.NewPCG(1, 2))
	msgs := []string{message(rng, 0, 250), message(rng, 1, 250), message(rng, 2, 200)}
	prefix := fmt.Sprintf(`{"messages": [%s], "plan": %q, `, strings.Join(msgs, ", "), words(rng, 150))
	return func(i int) json.RawMessage {
		return json.RawMessage(fmt.Sprintf(`%s"step": %d, "last_result": "tool call %d returned %08x"}`, prefix, i, i, rng.Uint32()))
	}
}

func benchSave(ctx context.Context, pool *pgxpool.Pool, store *checkpoint.Store, bin, url string, n int, r *checkpointResults) error {
	// Made beforehand, so that no side's timing includes building its state; the measured calls
	// take states 200 on, so none repeats a warm-up call's step value.
	const warmup = 200
	gen := smallStates()
	states := make([]json.RawMessage, warmup+n)
	for i := range states {
		states[i] = gen(i)
	}
	r.stateBytes = len(states[warmup])
	state := func(i int) json.RawMessage { return states[i] }
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_floor (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		workflow_id text, state jsonb, created_at timestamptz DEFAULT now())`); err != nil {
		return err
	}
	apiWF, err := store.Start(ctx, checkpoint.StartParams{ID: "bench-save-api", Name: "bench"})
	if err != nil {
		return err
	}
	mcpWF, err := store.Start(ctx, checkpoint.StartParams{ID: "bench-save-mcp", Name: "bench"})
	if err != nil {
		return err
	}

	cmd := exec.Command(bin, "--log-level", "warn", "serve", "--database-url", url)
	cmd.Stderr = os.Stderr
	cs, err := sdk.NewClient(&sdk.Implementation{Name: "bench", Version: "1"}, nil).Connect(ctx, &sdk.CommandTransport{Command: cmd}, nil)
	if err != nil {
		return fmt.Errorf("start cairn: %w", err)
	}
	defer cs.Close()

	// Each side fences its saves with the version the previous save returned, as a framework
	// that owns its thread would.
	apiVersion, mcpVersion := apiWF.Version, mcpWF.Version
	saveAPI := func(i int) error {
		res, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: apiWF.ID, NodeID: "agent", State: state(i), ExpectedVersion: &apiVersion})
		apiVersion = res.Version
		return err
	}
	saveMCP := func(i int) error {
		res, err := cs.CallTool(ctx, &sdk.CallToolParams{Name: "checkpoint_save", Arguments: map[string]any{
			"workflow_id": mcpWF.ID, "node_id": "agent", "state": state(i), "expected_version": mcpVersion}})
		if err != nil {
			return err
		}
		if res.IsError || len(res.Content) == 0 {
			return fmt.Errorf("checkpoint_save: tool error: %v", res.Content)
		}
		var out checkpoint.SaveResult
		if err := json.Unmarshal([]byte(res.Content[0].(*sdk.TextContent).Text), &out); err != nil {
			return fmt.Errorf("checkpoint_save result: %w", err)
		}
		mcpVersion = out.Version
		return nil
	}
	floor := func(i int) error {
		_, err := pool.Exec(ctx, `INSERT INTO bench_floor (workflow_id, state) VALUES ($1, $2)`, "bench-floor", string(state(i)))
		return err
	}
	for i := range warmup {
		if err := errorsOf(saveAPI(i), saveMCP(i), floor(i)); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	measured := func(f func(int) error) func(int) error { return func(i int) error { return f(warmup + i) } }
	s := measureEach(n, measured(saveAPI), measured(saveMCP), measured(floor))
	r.saveAPI, r.saveMCP, r.saveFloor = s[0], s[1], s[2]
	return nil
}

func errorsOf(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// measureEach times n calls of each function, taking turns, so that a slow spell of the shared
// machine falls on all of them alike; the turn starts with a different function each round, so
// that none is always the first after the previous round.
func measureEach(n int, fs ...func(int) error) []stats {
	ds := make([][]time.Duration, len(fs))
	for i := range n {
		for j := range fs {
			k := (i + j) % len(fs)
			t := time.Now()
			if err := fs[k](i); err != nil {
				fmt.Fprintln(os.Stderr, "bench: call failed:", err)
				os.Exit(1)
			}
			ds[k] = append(ds[k], time.Since(t))
		}
	}
	out := make([]stats, len(fs))
	for k, d := range ds {
		out[k] = percentiles(d)
	}
	return out
}

func percentiles(d []time.Duration) stats {
	slices.Sort(d)
	return stats{median: d[len(d)/2], p95: d[len(d)*95/100]}
}

// otherWorkflows are the other threads of the database the load benchmark runs in: with them,
// the planner's statistics say what they say in a real deployment — that one workflow holds a
// small share of the checkpoints and blobs — rather than that a benchmark workflow holds them
// all. The plans depend on it: with 1,000 the time-travel load kept to index lookups, with 5,000
// it scans all the workflow's blobs (docs/BENCHMARKS.md).
const otherWorkflows = 5000

// benchLoad builds a workflow of 10 checkpoints and one of r.depth among otherWorkflows of 3,
// then loads the newest state of the two, and old checkpoints by id, taking turns.
func benchLoad(ctx context.Context, pool *pgxpool.Pool, store *checkpoint.Store, n int, r *checkpointResults) error {
	state := smallStates()
	// build saves the history without ExpectedVersion (one writer, so no fencing is needed),
	// keeps every step-th checkpoint id for the time-travel loads, and times the first and the
	// last 1,000 saves: whether a save slows down as the history grows.
	var early, late []time.Duration
	build := func(id string, depth, every int) ([]string, error) {
		if _, err := store.Start(ctx, checkpoint.StartParams{ID: id, Name: "bench"}); err != nil {
			return nil, err
		}
		early, late = early[:0], late[:0]
		var ids []string
		for i := range depth {
			t := time.Now()
			res, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: id, NodeID: "agent", State: state(i)})
			if err != nil {
				return nil, fmt.Errorf("build %s, save %d: %w", id, i, err)
			}
			switch d := time.Since(t); {
			case i < 1000:
				early = append(early, d)
			case i >= depth-1000:
				late = append(late, d)
			}
			if i%every == 0 {
				ids = append(ids, res.CheckpointID)
			}
		}
		return ids, nil
	}
	for i := range otherWorkflows {
		if _, err := build(fmt.Sprintf("bench-other-%d", i), 3, 1); err != nil {
			return err
		}
	}
	shallowID, deepID := "bench-depth-10", fmt.Sprintf("bench-depth-%d", r.depth)
	shallowOld, err := build(shallowID, 10, 1)
	if err != nil {
		return err
	}
	t := time.Now()
	deepOld, err := build(deepID, r.depth, max(1, r.depth/100))
	if err != nil {
		return err
	}
	r.build = time.Since(t)
	if len(late) > 0 {
		r.saveEarly, r.saveLate = percentiles(early), percentiles(late)
	}
	// The head is among the kept ids only if depth-1 is a multiple of the step; drop it either
	// way, so that time travel always reads an older checkpoint.
	shallowOld, deepOld = shallowOld[:len(shallowOld)-1], deepOld[:len(deepOld)-1]
	// What autovacuum would do after such a burst of inserts, done now so that the plans do
	// not depend on when it gets round to it.
	if _, err := pool.Exec(ctx, "ANALYZE workflows, "+strings.Join(checkpointTables, ", ")); err != nil {
		return err
	}

	load := func(id, cp string) error {
		c, err := store.Load(ctx, id, cp, "")
		if err == nil && len(c.State) < 100 {
			err = fmt.Errorf("checkpoint %s of %s has a state of %d bytes", c.ID, id, len(c.State))
		}
		return err
	}
	for range 200 {
		if err := errorsOf(load(shallowID, ""), load(deepID, "")); err != nil {
			return fmt.Errorf("warm-up: %w", err)
		}
	}
	s := measureEach(n,
		func(int) error { return load(shallowID, "") },
		func(int) error { return load(deepID, "") })
	r.loadShallow, r.loadDeep = s[0], s[1]
	// Fewer calls: an old checkpoint of the deep workflow may take far longer than the head.
	r.travelCalls = max(20, n/20)
	s = measureEach(r.travelCalls,
		func(i int) error { return load(shallowID, shallowOld[i%len(shallowOld)]) },
		func(i int) error { return load(deepID, deepOld[i%len(deepOld)]) })
	r.travelShallow, r.travelDeep = s[0], s[1]
	return nil
}

// benchStorage saves a LangGraph-shaped workflow of the given steps — a message list that
// starts with 49 messages of about 1 KB and grows by one per step, plus a step counter, the next
// node and a plan — and measures what the checkpoint tables grow by.
func benchStorage(ctx context.Context, pool *pgxpool.Pool, store *checkpoint.Store, steps int) (storageResult, error) {
	res := storageResult{steps: steps}
	rng := rand.New(rand.NewPCG(3, 4))
	msgs := make([]string, 0, 49+steps)
	for i := range 49 {
		msgs = append(msgs, message(rng, i, 1000))
	}
	plan := words(rng, 300)
	states := make([]string, steps)
	for s := range steps {
		msgs = append(msgs, message(rng, len(msgs), 1000))
		if s%50 == 49 {
			plan = words(rng, 300) // the agent revises its plan now and then
		}
		next := [...]string{"agent", "tools"}[s%2]
		states[s] = fmt.Sprintf(`{"messages": [%s], "step": %d, "next": %q, "plan": %q}`, strings.Join(msgs, ", "), s+1, next, plan)
		res.naiveText += int64(len(states[s]))
	}
	res.firstState, res.lastState = len(states[0]), len(states[steps-1])

	if _, err := store.Start(ctx, checkpoint.StartParams{ID: "bench-storage", Name: "bench"}); err != nil {
		return res, err
	}
	vacuumFull := func() error {
		_, err := pool.Exec(ctx, "VACUUM FULL "+strings.Join(checkpointTables, ", "))
		return err
	}
	sizes := func(tables []string) ([]int64, error) {
		var out []int64
		err := pool.QueryRow(ctx, `SELECT array_agg(pg_total_relation_size(t::regclass) ORDER BY o)
			FROM unnest($1::text[]) WITH ORDINALITY u(t, o)`, tables).Scan(&out)
		return out, err
	}
	// Compact first, so that the growth is new pages, not free space left by the earlier benchmarks.
	if err := vacuumFull(); err != nil {
		return res, err
	}
	before, err := sizes(checkpointTables)
	if err != nil {
		return res, err
	}
	for s, st := range states {
		if _, err := store.Save(ctx, checkpoint.SaveParams{WorkflowID: "bench-storage", NodeID: [...]string{"agent", "tools"}[s%2], State: json.RawMessage(st)}); err != nil {
			return res, fmt.Errorf("save %d: %w", s, err)
		}
	}
	raw, err := sizes(checkpointTables)
	if err != nil {
		return res, err
	}
	// VACUUM FULL drops the dead tuples each save leaves (the previous head's full state copy,
	// the updated stream head): space PostgreSQL reuses, so not what a step really costs.
	if err := vacuumFull(); err != nil {
		return res, err
	}
	after, err := sizes(checkpointTables)
	if err != nil {
		return res, err
	}
	for i := range before {
		res.raw += raw[i] - before[i]
		res.vacuumed += after[i] - before[i]
		res.tables = append(res.tables, after[i]-before[i])
	}

	// The naive design for comparison: the whole state in a row per step.
	if _, err := pool.Exec(ctx, `CREATE TABLE bench_naive (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
		workflow_id text, state jsonb, created_at timestamptz DEFAULT now())`); err != nil {
		return res, err
	}
	nb, err := sizes([]string{"bench_naive"})
	if err != nil {
		return res, err
	}
	for _, st := range states {
		if _, err := pool.Exec(ctx, `INSERT INTO bench_naive (workflow_id, state) VALUES ($1, $2)`, "bench-storage", st); err != nil {
			return res, err
		}
	}
	na, err := sizes([]string{"bench_naive"})
	if err != nil {
		return res, err
	}
	res.naiveTable = na[0] - nb[0]
	return res, nil
}

func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/1024) }

func printCheckpoints(w io.Writer, r *checkpointResults) {
	fmt.Fprintf(w, "\n| checkpoint save, %d-byte state | cairn | plain pgx INSERT (floor) | ratio | goal |\n|---|---|---|---|---|\n", r.stateBytes)
	fmt.Fprintf(w, "| Go API (`Store.Save`, ExpectedVersion), median | %s | %s | %.2fx | within 1.5x |\n", ms(r.saveAPI.median), ms(r.saveFloor.median), ratio(r.saveAPI.median, r.saveFloor.median))
	fmt.Fprintf(w, "| Go API, p95 | %s | %s | %.2fx | |\n", ms(r.saveAPI.p95), ms(r.saveFloor.p95), ratio(r.saveAPI.p95, r.saveFloor.p95))
	fmt.Fprintf(w, "| MCP over stdio (`checkpoint_save`), median | %s | %s | %.2fx | |\n", ms(r.saveMCP.median), ms(r.saveFloor.median), ratio(r.saveMCP.median, r.saveFloor.median))
	fmt.Fprintf(w, "| MCP over stdio, p95 | %s | %s | %.2fx | |\n", ms(r.saveMCP.p95), ms(r.saveFloor.p95), ratio(r.saveMCP.p95, r.saveFloor.p95))

	fmt.Fprintf(w, "\n| checkpoint load (`Store.Load`), among %d other workflows | history depth 10 | history depth %d | ratio | goal |\n|---|---|---|---|---|\n", otherWorkflows, r.depth)
	fmt.Fprintf(w, "| newest state, median | %s | %s | %.2fx | within 10%% |\n", ms(r.loadShallow.median), ms(r.loadDeep.median), ratio(r.loadDeep.median, r.loadShallow.median))
	fmt.Fprintf(w, "| newest state, p95 | %s | %s | %.2fx | |\n", ms(r.loadShallow.p95), ms(r.loadDeep.p95), ratio(r.loadDeep.p95, r.loadShallow.p95))
	fmt.Fprintf(w, "| an older checkpoint by id (time travel), median of %d | %s | %s | %.2fx | for information |\n", r.travelCalls, ms(r.travelShallow.median), ms(r.travelDeep.median), ratio(r.travelDeep.median, r.travelShallow.median))
	fmt.Fprintf(w, "| an older checkpoint by id, p95 | %s | %s | %.2fx | |\n", ms(r.travelShallow.p95), ms(r.travelDeep.p95), ratio(r.travelDeep.p95, r.travelShallow.p95))
	fmt.Fprintf(w, "| building the deep history: %d saves | | %.1f s (%s per save) | | |\n", r.depth, r.build.Seconds(), ms(r.build/time.Duration(max(1, r.depth))))
	fmt.Fprintf(w, "| a save (`Store.Save`) while building: the first / the last 1,000, median | | %s / %s | %.2fx | |\n", ms(r.saveEarly.median), ms(r.saveLate.median), ratio(r.saveLate.median, r.saveEarly.median))
	fmt.Fprintf(w, "| the same, p95 | | %s / %s | %.2fx | |\n", ms(r.saveEarly.p95), ms(r.saveLate.p95), ratio(r.saveLate.p95, r.saveEarly.p95))

	s := r.storage
	per := func(b int64) string { return fmt.Sprintf("%.2f KiB", float64(b)/1024/float64(s.steps)) }
	fmt.Fprintf(w, "\n| storage, %d steps, state %s → %s | total | per step | goal |\n|---|---|---|---|\n", s.steps, kib(int64(s.firstState)), kib(int64(s.lastState)))
	fmt.Fprintf(w, "| cairn: growth of %s, raw | %s | %s | |\n", strings.Join(checkpointTables, " + "), kib(s.raw), per(s.raw))
	fmt.Fprintf(w, "| cairn: the same after VACUUM FULL | %s | %s | under 5 KB |\n", kib(s.vacuumed), per(s.vacuumed))
	for i, t := range checkpointTables {
		fmt.Fprintf(w, "| … of which %s | %s | %s | |\n", t, kib(s.tables[i]), per(s.tables[i]))
	}
	fmt.Fprintf(w, "| naive: the whole state per step, as JSON text | %s | %s | |\n", kib(s.naiveText), per(s.naiveText))
	fmt.Fprintf(w, "| naive: the whole state per step, rows of a plain jsonb table (TOAST-compressed) | %s | %s | |\n", kib(s.naiveTable), per(s.naiveTable))
	fmt.Fprintf(w, "| naive as the issue counts it: %d × the first state | %s | %s | |\n", s.steps, kib(int64(s.steps*s.firstState)), kib(int64(s.firstState)))
}
