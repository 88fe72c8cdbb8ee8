package sqlexec

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/internal/pgjson"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

func limitWrap(text string, maxRows int) string {
	return limitPrefix + text + limitSuffix + itoa(maxRows+1)
}

// Query runs one read-only statement and appends {"rows":[…],"row_count":N,"columns":[…],
// "truncated":bool} to dst. The statement is classified by the PostgreSQL parser and then run
// in a READ ONLY transaction that is always rolled back, so neither a missed case in the parser
// check nor a volatile function can change anything beyond the call.
func (r *Runner) Query(ctx context.Context, dst []byte, sqlText string, params []Param) ([]byte, error) {
	st, err := r.checks.check(sqlText, false)
	if err != nil {
		return dst, asInput(err)
	}
	if err := checkStatement(ctx, st); err != nil {
		return dst, err
	}
	return r.read(ctx, dst, st.Text, st.Cursorable, params, nil)
}

// read runs a read-only statement (already checked, or built by cairn) in a READ ONLY
// transaction that is rolled back; setup statements (SET LOCAL …) run first inside it. limit
// says the statement may be wrapped to stop after max rows.
func (r *Runner) read(ctx context.Context, dst []byte, text string, limit bool, params []Param, setup []string) ([]byte, error) {
	conn, err := r.acquire(ctx)
	if err != nil {
		return dst, err
	}
	vals, err := r.bind(ctx, conn.Conn().PgConn(), text, params)
	if err != nil {
		conn.Release()
		return dst, err
	}
	pl := startPipeline(ctx, conn)
	p := pl.p
	p.SendQueryParams(beginReadOnlySQL, nil, nil, nil, nil)
	for _, s := range setup {
		p.SendQueryParams(s, nil, nil, nil, nil)
	}
	sent, offset := text, 0
	if limit {
		sent, offset = limitWrap(text, r.maxRows), len(limitPrefix)
	}
	p.SendQueryParams(sent, vals, nil, nil, nil)
	// The sync right after the statement makes the server send its rows at once, and lets the
	// ROLLBACK after it run even when the statement failed.
	p.SendPipelineSync()
	p.SendQueryParams(rollbackSQL, nil, nil, nil, nil)
	p.SendPipelineSync()
	sendReset(p)
	if err := p.Flush(); err != nil {
		pl.finish(0)
		return dst, noEffect(wrapPgError(err, "query", text, 0))
	}
	start := len(dst)
	dst, qerr := r.readQuery(p, dst, 1+len(setup))
	if qerr == errAbandoned {
		// The rest of the result is still coming: closing the connection stops the server
		// sending it (and the connection is not reused, since its pipeline was left midway).
		conn.Conn().PgConn().Close(context.Background())
		pl.finish(0)
		return dst, nil
	}
	pl.finish(2)
	if qerr != nil {
		return dst[:start], noEffect(wrapPgError(qerr, "query", text, offset))
	}
	return dst, nil
}

// readQuery skips the results of the first skip requests (BEGIN, setup), writes the rows of the
// next one and reads up to the sync after them.
func (r *Runner) readQuery(p *pgconn.Pipeline, dst []byte, skip int) ([]byte, error) {
	for range skip {
		rr, err := nextResult(p)
		if err != nil {
			return dst, err
		}
		if _, err := rr.Close(); err != nil {
			return dst, errors.Join(err, drainToSync(p))
		}
	}
	rr, err := nextResult(p)
	if err != nil {
		return dst, err
	}
	dst = append(dst, '{')
	dst, _, err = r.writeRows(dst, rr, nil, true)
	dst = append(dst, '}')
	if err == errAbandoned {
		return dst, err
	}
	if err != nil {
		return dst, errors.Join(err, drainToSync(p))
	}
	return dst, drainToSync(p)
}

// firstRow keeps the first row of a result so that later statements of a transaction can refer
// to its values.
type firstRow struct {
	names []string
	vals  [][]byte
}

// errAbandoned is returned by writeRows when it stopped reading a result at the byte cap: the
// rest is still on its way, so the connection must be closed, not reused.
var errAbandoned = errors.New("result abandoned at the byte cap")

// writeRows streams a result into dst as the members "rows", "row_count", "columns" and
// "truncated" (without enclosing braces). keep, when non-nil, receives a copy of the first row.
// Rows beyond the row cap or the byte cap are left out and the result marked truncated; with
// abandon set, reading stops at the byte cap and writeRows returns errAbandoned after writing
// the members (only for reads, whose rest nobody needs: a write's rows are read to the end, or
// its transaction could not commit).
func (r *Runner) writeRows(dst []byte, rr *pgconn.ResultReader, keep *firstRow, abandon bool) ([]byte, pgconn.CommandTag, error) {
	enc := r.enc.Load()
	fds := rr.FieldDescriptions()
	names := columnNames(fds)
	keys := make([][]byte, len(names))
	for i, n := range names {
		k := pgjson.AppendString(nil, n)
		keys[i] = append(k, ':')
	}
	start := len(dst)
	dst = append(dst, `"rows":[`...)
	n, cut := 0, cutNone
	for rr.NextRow() {
		if cut != cutNone {
			continue // the LIMIT wrapper stopped the server early; other statements are read and dropped
		}
		if n == r.maxRows {
			cut = cutRows
			continue
		}
		vals := rr.Values()
		if keep != nil && n == 0 {
			keep.names = names
			keep.vals = make([][]byte, len(vals))
			for i, v := range vals {
				if v != nil {
					keep.vals[i] = append([]byte{}, v...)
				}
			}
		}
		row := len(dst)
		if n > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '{')
		for i, v := range vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, keys[i]...)
			dst = enc.AppendValue(dst, fds[i].DataTypeOID, v)
		}
		dst = append(dst, '}')
		if len(dst)-start > r.maxBytes {
			dst, cut = dst[:row], cutBytes
			if abandon {
				break
			}
			continue
		}
		n++
	}
	var tag pgconn.CommandTag
	var err error
	if cut == cutBytes && abandon {
		err = errAbandoned
	} else if tag, err = rr.Close(); err != nil {
		return dst, tag, err
	}
	dst = append(dst, `],"row_count":`...)
	dst = append(dst, itoa(n)...)
	dst = append(dst, `,"columns":[`...)
	for i, name := range names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = pgjson.AppendString(dst, name)
	}
	dst = append(dst, `],"truncated":`...)
	switch cut {
	case cutRows:
		dst = append(dst, `true,"max_rows":`...)
		dst = append(dst, itoa(r.maxRows)...)
		dst = append(dst, `,"notice":"result cut at max rows (--max-rows / CAIRN_MAX_ROWS); add LIMIT/OFFSET or a narrower WHERE to see the rest"`...)
	case cutBytes:
		dst = append(dst, `true,"max_result_bytes":`...)
		dst = append(dst, itoa(r.maxBytes)...)
		dst = append(dst, `,"notice":"result cut at `...)
		dst = append(dst, formatBytes(r.maxBytes)...)
		dst = append(dst, ` (--max-result-bytes / CAIRN_MAX_RESULT_BYTES) after `...)
		dst = append(dst, itoa(n)...)
		dst = append(dst, ` rows; select fewer or shorter columns (e.g. left(body, 1000)), or page with LIMIT/OFFSET"`...)
	default:
		dst = append(dst, `false`...)
	}
	return dst, tag, err
}

// Why a result was cut short.
const (
	cutNone = iota
	cutRows
	cutBytes
)

// formatBytes writes a byte count the way people read it: "16 MiB", "512 KiB", "900 bytes".
func formatBytes(n int) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return itoa(n>>20) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + " KiB"
	}
	return itoa(n) + " bytes"
}

// columnNames returns the result's column names, made unique (a second "id" becomes "id_2") so
// that each row is a JSON object with no duplicate keys.
func columnNames(fds []pgconn.FieldDescription) []string {
	names := make([]string, len(fds))
	seen := make(map[string]bool, len(fds))
	for i, fd := range fds {
		name := fd.Name
		for k := 2; seen[name]; k++ {
			name = fd.Name + "_" + itoa(k)
		}
		seen[name] = true
		names[i] = name
	}
	return names
}

// asInput makes a parser verdict an callerr.Input.
func asInput(err error) error {
	var ge *sqlguard.Error
	if errors.As(err, &ge) {
		return &callerr.Input{Msg: ge.Error()}
	}
	return err
}
