// Package sqlexec runs caller-supplied SQL for the generic tools (query, execute, transaction)
// and writes results straight into a JSON buffer. Every call is one pipelined round trip on a
// pooled connection, ending with DISCARD ALL so that nothing a caller did to the session (a
// setting, an advisory lock, a temporary table) reaches the next caller of that connection.
package sqlexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/internal/pgjson"
)

// Options configure a Runner; zero values are the documented defaults.
type Options struct {
	// MaxRows caps the rows a result returns; the rest is cut and the result marked truncated.
	// Default 1000.
	MaxRows int
	// MaxResultBytes caps the JSON a result's rows take; rows beyond it are cut and the result
	// marked truncated, and a read stops there. Default DefaultMaxResultBytes.
	MaxResultBytes int
	// ReadOnly refuses every write (execute, transaction).
	ReadOnly bool
	Logger   *slog.Logger
}

// Runner runs caller SQL against a pool. It is safe for concurrent use.
type Runner struct {
	pool     *pgxpool.Pool
	maxRows  int
	maxBytes int
	ro       bool
	log      *slog.Logger
	enc      atomic.Pointer[pgjson.Encoder]
	// hasVector and iterativeScan describe the database's pgvector: installed, and 0.8 or newer.
	hasVector     atomic.Bool
	iterativeScan atomic.Bool
	checks        *checkCache
}

// DefaultMaxResultBytes is the default byte cap of a result: far more than a model can read
// (about a million tokens), small enough that many callers at once cannot exhaust the server's
// memory, and small enough that the answer — which carries the rows twice, as structured
// content and as text — fits the 16 MiB frames MCP clients on the go-sdk accept over stdio.
const DefaultMaxResultBytes = 4 << 20

// ErrReadOnly is returned for writes when cairn runs with --read-only.
var ErrReadOnly = &callerr.Input{Msg: "cairn runs read-only (--read-only / CAIRN_READ_ONLY): writes are refused; use the query tool to read"}

// New returns a Runner and loads the type OIDs of installed extensions (pgvector).
func New(ctx context.Context, pool *pgxpool.Pool, opts Options) (*Runner, error) {
	if opts.MaxRows <= 0 {
		opts.MaxRows = 1000
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = DefaultMaxResultBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	r := &Runner{pool: pool, maxRows: opts.MaxRows, maxBytes: opts.MaxResultBytes, ro: opts.ReadOnly, log: opts.Logger, checks: newCheckCache(4096)}
	if err := r.RefreshTypes(ctx); err != nil {
		return nil, err
	}
	return r, nil
}

// RefreshTypes reloads the OIDs of extension types whose OIDs differ per database. It runs at
// start and after a statement creates or drops an extension.
func (r *Runner) RefreshTypes(ctx context.Context) error {
	var vec, half, sparse uint32
	var version string
	err := r.pool.QueryRow(ctx, extensionTypesSQL).Scan(&vec, &half, &sparse, &version)
	if err != nil {
		return fmt.Errorf("load extension type oids: %w", err)
	}
	enc := pgjson.NewEncoder(pgtype.NewMap())
	enc.SetExtensionOIDs(vec, half, sparse)
	r.enc.Store(enc)
	r.hasVector.Store(version != "")
	r.iterativeScan.Store(versionAtLeast(version, 0, 8))
	return nil
}

// Param is one JSON-decoded parameter (decoded with UseNumber).
type Param = any

// bind turns JSON parameters into text-format values; the server infers each parameter's type
// (OID 0), so a JSON 50000 binds to a bigint column and a string to uuid or timestamptz. Only
// when a parameter is a JSON array (an array literal or JSON, depending on the parameter's type)
// does it ask the server for the types first.
func (r *Runner) bind(ctx context.Context, pg *pgconn.PgConn, sqlText string, params []Param) ([][]byte, error) {
	if len(params) == 0 {
		return nil, nil
	}
	vals := make([][]byte, len(params))
	needTypes := false
	for _, p := range params {
		if pgjson.ParamNeedsType(p) {
			needTypes = true
			break
		}
	}
	enc := r.enc.Load()
	if needTypes {
		sd, err := pg.Prepare(ctx, "", sqlText, nil)
		if err != nil {
			return nil, wrapPgError(err, "describe parameters", sqlText, 0)
		}
		if len(sd.ParamOIDs) != len(params) {
			return nil, inputErrorf("the statement has %d parameter(s) ($1…) but params has %d value(s)", len(sd.ParamOIDs), len(params))
		}
		for i, p := range params {
			if rv, ok := p.(refValue); ok {
				vals[i] = []byte(rv)
				continue
			}
			v, err := enc.ParamTextFor(sd.ParamOIDs[i], p)
			if err != nil {
				return nil, inputErrorf("params[%d] ($%d): %v", i, i+1, err)
			}
			vals[i] = v
		}
		return vals, nil
	}
	for i, p := range params {
		if rv, ok := p.(refValue); ok {
			vals[i] = []byte(rv)
			continue
		}
		v, err := pgjson.ParamText(p)
		if err != nil {
			return nil, inputErrorf("params[%d] ($%d): %v", i, i+1, err)
		}
		vals[i] = v
	}
	return vals, nil
}

// acquire takes a connection, turning pool failures into an error that says the database is
// unreachable rather than a bare dial error.
func (r *Runner) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := r.pool.Acquire(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("waiting for a database connection: %w", ctx.Err())
		}
		if o := db.AsOutage(err); o != nil {
			return nil, o
		}
		return nil, fmt.Errorf("database unavailable (nothing was run; retry once it is back): %w", err)
	}
	return c, nil
}

// nextResult reads the next request's result, which must be a statement's; after a failure it
// reads on to the sync point so the pipeline stays in step.
func nextResult(p *pgconn.Pipeline) (*pgconn.ResultReader, error) {
	res, err := p.GetResults()
	if err != nil {
		return nil, errors.Join(err, drainToSync(p))
	}
	rr, ok := res.(*pgconn.ResultReader)
	if !ok {
		return nil, errors.Join(fmt.Errorf("pipeline: expected a statement's result, got %T", res), drainToSync(p))
	}
	return rr, nil
}

// drainToSync reads pipeline results up to and including the next sync point, returning the
// first error among them. After a failed request the server skips the rest until the sync.
func drainToSync(p *pgconn.Pipeline) error {
	var first error
	for {
		res, err := p.GetResults()
		if err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) {
				return err // connection-level: nothing more will come
			}
			if first == nil {
				first = err
			}
			continue
		}
		switch res := res.(type) {
		case nil:
			return first
		case *pgconn.PipelineSync:
			return first
		case *pgconn.ResultReader:
			if _, err := res.Close(); err != nil && first == nil {
				first = err
			}
		}
	}
}

// pipeline is one call's pipeline on a pooled connection.
type pipeline struct {
	conn   *pgxpool.Conn
	p      *pgconn.Pipeline
	detach func() bool
	cancel context.CancelFunc
}

// startPipeline starts a pipeline that the caller's cancellation interrupts only until finish:
// the trailing rollback and reset must run whatever happens to the caller.
func startPipeline(ctx context.Context, conn *pgxpool.Conn) *pipeline {
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	detach := context.AfterFunc(ctx, cancel)
	return &pipeline{conn: conn, p: conn.Conn().PgConn().StartPipeline(pctx), detach: detach, cancel: cancel}
}

// finish reads the requests that end every call (ROLLBACK, DISCARD ALL: syncs sync points) in
// the background, so the caller has its result without waiting for them, then returns the
// connection to the pool. A connection that did not end clean is closed instead.
func (pl *pipeline) finish(syncs int) {
	pl.detach()
	go func() {
		defer pl.cancel()
		var err error
		for range syncs {
			if e := drainToSync(pl.p); e != nil && err == nil {
				err = e
			}
		}
		if e := pl.p.Close(); e != nil && err == nil {
			err = e
		}
		pg := pl.conn.Conn().PgConn()
		if err != nil || pg.TxStatus() != 'I' {
			pg.Close(context.Background())
		}
		pl.conn.Release()
	}()
}

// sendReset queues the session reset that ends every call.
func sendReset(p *pgconn.Pipeline) {
	p.SendQueryParams(resetSessionSQL, nil, nil, nil, nil)
	p.SendPipelineSync()
}

func itoa(n int) string { return strconv.Itoa(n) }

// versionAtLeast compares a "major.minor[.patch]" extension version.
func versionAtLeast(v string, major, minor int) bool {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	ma, err1 := strconv.Atoi(parts[0])
	mi, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return ma > major || (ma == major && mi >= minor)
}
