package sqlexec

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// TxStatement is one statement of a transaction call.
type TxStatement struct {
	SQL    string
	Params []Param
	// As names the value of the first column of the statement's first row, so later
	// statements can pass it as the parameter "{name}".
	As string
}

// MaxTxStatements bounds one transaction call.
const MaxTxStatements = 100

// refPattern is a parameter that refers to an earlier statement's result: exactly "{name}".
var refPattern = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}$`)

// Transaction runs the statements in one transaction, all or nothing, and appends
// {"results":[…one per statement…],"committed":true} to dst. A parameter that is exactly
// "{name}" is replaced by an earlier statement's value: the one bound with as: "name", else
// column name of an earlier first row, else — for "<thing>_id" — the id an earlier statement on
// the table <thing>s returned (the seed's {workflow_id} after INSERT INTO workflows … RETURNING id).
func (r *Runner) Transaction(ctx context.Context, dst []byte, stmts []TxStatement) ([]byte, error) {
	if r.ro {
		return dst, ErrReadOnly
	}
	if len(stmts) == 0 {
		return dst, inputErrorf("statements is empty: give at least one {\"sql\": …}")
	}
	if len(stmts) > MaxTxStatements {
		return dst, inputErrorf("statements has %d entries; one call runs at most %d", len(stmts), MaxTxStatements)
	}
	parsed := make([]*sqlguard.Statement, len(stmts))
	for i, s := range stmts {
		st, err := r.checks.check(s.SQL, true)
		if err != nil {
			return dst, inputErrorf("statements[%d]: %v (nothing was run)", i, asInput(err))
		}
		parsed[i] = st
		if s.As != "" && !refPattern.MatchString("{"+s.As+"}") {
			return dst, inputErrorf("statements[%d].as %q: use a plain name (letters, digits, _)", i, s.As)
		}
		if err := checkStatement(ctx, st); err != nil {
			return dst, fmt.Errorf("statements[%d]: %w (nothing was run)", i, err)
		}
	}

	conn, err := r.acquire(ctx)
	if err != nil {
		return dst, err
	}
	pg := conn.Conn().PgConn()
	if err := pg.Exec(ctx, beginSQL).Close(); err != nil {
		pg.Close(context.Background())
		conn.Release()
		return dst, noEffect(wrapPgError(err, "transaction: begin", "", 0))
	}
	start := len(dst)
	dst, terr := r.runTx(ctx, pg, dst, stmts, parsed)
	end := commitSQL
	if terr != nil {
		end, dst = rollbackSQL, dst[:start]
	}
	pl := startPipeline(ctx, conn)
	pl.p.SendQueryParams(end, nil, nil, nil, nil)
	pl.p.SendPipelineSync()
	sendReset(pl.p)
	if err := pl.p.Flush(); err != nil {
		pl.finish(0)
		if terr != nil {
			return dst, terr
		}
		return dst, wrapPgError(err, "transaction: commit (whether it committed is unknown; check before retrying)", "", 0)
	}
	cerr := drainToSync(pl.p)
	pl.finish(1)
	if terr != nil {
		return dst, terr
	}
	if cerr != nil {
		// A statement error at COMMIT (a deferred constraint) rolled everything back; a lost
		// connection leaves the outcome unknown, and the outage says so.
		return dst[:start], wrapPgError(cerr, "transaction: commit failed, nothing was committed", "", 0)
	}
	if slices.ContainsFunc(parsed, changesTypes) {
		if err := r.RefreshTypes(ctx); err != nil {
			r.log.Warn("reload extension types after transaction", "err", err)
		}
	}
	return dst, nil
}

func (r *Runner) runTx(ctx context.Context, pg *pgconn.PgConn, dst []byte, stmts []TxStatement, parsed []*sqlguard.Statement) ([]byte, error) {
	rows := make([]firstRow, len(stmts))
	dst = append(dst, `{"results":[`...)
	for i, s := range stmts {
		params, err := resolveRefs(i, s.Params, stmts, parsed, rows)
		if err != nil {
			return dst, err
		}
		vals, err := r.bind(ctx, pg, parsed[i].Text, params)
		if err != nil {
			return dst, noEffect(fmt.Errorf("statements[%d]: %w (nothing was committed)", i, err))
		}
		if i > 0 {
			dst = append(dst, ',')
		}
		rr := pg.ExecParams(ctx, parsed[i].Text, vals, nil, nil, nil)
		dst, err = r.writeCommandResult(dst, rr, parsed[i], &rows[i])
		if err != nil {
			return dst, noEffect(wrapPgError(err, fmt.Sprintf("statements[%d] failed, nothing was committed", i), parsed[i].Text, 0))
		}
	}
	return append(dst, `],"committed":true}`...), nil
}

// resolveRefs replaces "{name}" parameters of statement i with earlier statements' values.
func resolveRefs(i int, params []Param, stmts []TxStatement, parsed []*sqlguard.Statement, rows []firstRow) ([]Param, error) {
	var out []Param
	for k, p := range params {
		s, ok := p.(string)
		if !ok {
			continue
		}
		m := refPattern.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		v, found := lookupRef(m[1], i, stmts, parsed, rows)
		if !found {
			return nil, inputErrorf("statements[%d].params[%d] is %q, but no earlier statement produced %q: add \"as\": %q to the statement whose first row's first column it is, or return a column of that name (… RETURNING id AS %s); nothing was committed",
				i, k, s, m[1], m[1], m[1])
		}
		if out == nil {
			out = append([]Param{}, params...)
		}
		if v == nil {
			out[k] = nil
		} else {
			out[k] = refValue(string(v))
		}
	}
	if out == nil {
		return params, nil
	}
	return out, nil
}

// refValue is a resolved reference: already the server's text form of the value.
type refValue string

func lookupRef(name string, i int, stmts []TxStatement, parsed []*sqlguard.Statement, rows []firstRow) ([]byte, bool) {
	for j := i - 1; j >= 0; j-- {
		if stmts[j].As == name && len(rows[j].vals) > 0 {
			return rows[j].vals[0], true
		}
	}
	for j := i - 1; j >= 0; j-- {
		for c, col := range rows[j].names {
			if col == name {
				return rows[j].vals[c], true
			}
		}
	}
	if thing, ok := strings.CutSuffix(name, "_id"); ok {
		for j := i - 1; j >= 0; j-- {
			if !touchesTableOf(parsed[j], thing) {
				continue
			}
			for c, col := range rows[j].names {
				if col == "id" {
					return rows[j].vals[c], true
				}
			}
		}
	}
	return nil, false
}

// touchesTableOf reports whether the statement names a table that is the plural of thing
// (workflow → workflows, entity → entities, process → processes) or thing itself.
func touchesTableOf(st *sqlguard.Statement, thing string) bool {
	forms := []string{thing, thing + "s", thing + "es"}
	if y, ok := strings.CutSuffix(thing, "y"); ok {
		forms = append(forms, y+"ies")
	}
	for _, t := range st.Tables {
		for _, f := range forms {
			if strings.EqualFold(t.Name, f) {
				return true
			}
		}
	}
	return false
}
