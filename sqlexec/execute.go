package sqlexec

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/pgjson"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// Execute runs one statement that may write (INSERT, UPDATE, DELETE, DDL, …) in its own
// transaction and appends {"command":…, "rows_affected":N} to dst, plus the "rows" of a
// RETURNING clause.
func (r *Runner) Execute(ctx context.Context, dst []byte, sqlText string, params []Param) ([]byte, error) {
	if r.ro {
		return dst, ErrReadOnly
	}
	st, err := r.checks.check(sqlText, true)
	if err != nil {
		return dst, asInput(err)
	}
	if err := checkStatement(ctx, st); err != nil {
		return dst, err
	}
	conn, err := r.acquire(ctx)
	if err != nil {
		return dst, err
	}
	vals, err := r.bind(ctx, conn.Conn().PgConn(), st.Text, params)
	if err != nil {
		conn.Release()
		return dst, err
	}
	dst, err = r.write(ctx, conn, dst, st, vals, nil)
	if err != nil {
		return dst, wrapPgError(err, "execute", st.Text, 0)
	}
	if changesTypes(st) {
		if err := r.RefreshTypes(ctx); err != nil {
			r.log.Warn("reload extension types after "+st.Command, "err", err)
		}
	}
	return dst, nil
}

// write runs one statement that may write, as its own implicit transaction, followed by the
// session reset, and writes its result (see writeCommandResult). It releases conn.
func (r *Runner) write(ctx context.Context, conn *pgxpool.Conn, dst []byte, st *sqlguard.Statement, vals [][]byte, keep *firstRow) ([]byte, error) {
	pl := startPipeline(ctx, conn)
	pl.p.SendQueryParams(st.Text, vals, nil, nil, nil)
	pl.p.SendPipelineSync()
	sendReset(pl.p)
	if err := pl.p.Flush(); err != nil {
		pl.finish(0)
		return dst, err
	}
	start := len(dst)
	dst, err := r.readExecute(pl.p, dst, st, keep)
	pl.finish(1)
	if err != nil {
		return dst[:start], err
	}
	return dst, nil
}

// readExecute reads one statement's result up to its sync.
func (r *Runner) readExecute(p *pgconn.Pipeline, dst []byte, st *sqlguard.Statement, keep *firstRow) ([]byte, error) {
	rr, err := nextResult(p)
	if err != nil {
		return dst, err
	}
	dst, err = r.writeCommandResult(dst, rr, st, keep)
	if err != nil {
		return dst, errors.Join(err, drainToSync(p))
	}
	return dst, drainToSync(p)
}

// writeCommandResult writes {"command":…, "rows_affected":N[, "rows":…]} for one statement.
func (r *Runner) writeCommandResult(dst []byte, rr *pgconn.ResultReader, st *sqlguard.Statement, keep *firstRow) ([]byte, error) {
	var rows []byte
	var tag pgconn.CommandTag
	var err error
	if len(rr.FieldDescriptions()) > 0 {
		// The command tag comes after the rows, so the rows go to a scratch buffer first.
		rows, tag, err = r.writeRows(nil, rr, keep, false)
	} else {
		tag, err = rr.Close()
	}
	if err != nil {
		return dst, err
	}
	dst = append(dst, `{"command":`...)
	dst = pgjson.AppendString(dst, commandOf(tag, st))
	dst = append(dst, `,"rows_affected":`...)
	dst = append(dst, itoa(int(tag.RowsAffected()))...)
	if rows != nil {
		dst = append(dst, ',')
		dst = append(dst, rows...)
	}
	return append(dst, '}'), nil
}

// commandOf names the command from the server's tag ("INSERT 0 1" → "INSERT", "CREATE TABLE").
func commandOf(tag pgconn.CommandTag, st *sqlguard.Statement) string {
	s := tag.String()
	if s == "" {
		return st.Command
	}
	fields := strings.Fields(s)
	for len(fields) > 1 && isDigits(fields[len(fields)-1]) {
		fields = fields[:len(fields)-1]
	}
	return strings.Join(fields, " ")
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// changesTypes reports whether a statement may add or remove types whose OIDs the encoder needs.
func changesTypes(st *sqlguard.Statement) bool {
	c := strings.ToUpper(st.Command)
	return strings.Contains(c, "EXTENSION") || strings.Contains(c, "DROP") || strings.Contains(c, "TYPE")
}
