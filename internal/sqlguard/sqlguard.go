// Package sqlguard decides which caller-supplied SQL each cairn tool may run. It parses with
// PostgreSQL's own parser (pg_query_go), so comments, quoting and dollar-quoting cannot hide a
// second statement or a write, and it reports what a statement is and what it touches.
//
// It is the first wall and exists to give agents clear errors: the query tool also runs in a
// READ ONLY transaction that is rolled back, and the database role bounds what any tool can do.
package sqlguard

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"github.com/pganalyze/pg_query_go/v6/parser"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Statement is one parsed, classified SQL statement.
type Statement struct {
	// Text is the statement as the caller wrote it, trimmed and without a trailing semicolon.
	Text string
	// Command names the statement in upper case, like PostgreSQL's command tags: "SELECT" (also
	// for VALUES and TABLE), "SELECT INTO", "INSERT", "EXPLAIN", "SHOW", "CREATE TABLE",
	// "DROP INDEX", "ALTER TABLE", "VACUUM", "ANALYZE", "DO", "CALL", "SET ROLE", "COMMIT", …
	Command string
	// ReadOnly is true when the statement can change neither data nor session state, which is
	// exactly when CheckQuery accepts it. EXPLAIN without ANALYZE is read-only whatever it plans.
	ReadOnly bool
	// Cursorable is true for a SELECT, VALUES or TABLE without INTO, locking clauses or
	// data-modifying WITH queries, which may run as DECLARE c CURSOR FOR <Text>.
	Cursorable bool
	// Tables lists each relation the statement names, once, in order of appearance: FROM items,
	// subqueries, CTE bodies, DML and DDL targets. References to CTEs are not tables.
	Tables []TableRef
	// Functions lists each function called, once, lower-case and schema-qualified as written
	// ("pg_catalog.set_config" or "set_config"; EXTRACT(… FROM …) is "extract").
	Functions []string
	// Footprint is what the statement needs permission for: its operation and every relation
	// and function it reaches, with how it reaches them (tables.go).
	Footprint Footprint
}

// TableRef names a relation; Schema is "" when the statement did not qualify it.
type TableRef struct{ Schema, Name string }

func (t TableRef) String() string {
	if t.Schema == "" {
		return t.Name
	}
	return t.Schema + "." + t.Name
}

// Error is SQL the caller must change: Reason says what is wrong, Hint how to fix it.
type Error struct{ Reason, Hint string }

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Reason
	}
	return e.Reason + "; " + e.Hint
}

// Parse parses sql, which must hold exactly one statement, and classifies it without judging
// whether any tool may run it.
func Parse(sql string) (*Statement, error) {
	a, err := analyze(sql)
	if err != nil {
		return nil, err
	}
	return &a.st, nil
}

// CheckQuery returns the statement if the read-only query tool may run it: SELECT, VALUES,
// TABLE, SHOW and EXPLAIN, without writes, locks or side-effecting functions anywhere inside.
func CheckQuery(sql string) (*Statement, error) {
	a, err := analyze(sql)
	if err != nil {
		return nil, err
	}
	if a.refused != nil {
		return nil, a.refused
	}
	if a.roProblem != "" {
		return nil, &Error{Reason: "query runs only read-only statements, and " + a.roProblem, Hint: a.roHint}
	}
	return &a.st, nil
}

// CheckExecute returns the statement if the execute and transaction tools may run it: anything
// but transaction control, session state, COPY and functions whose effect outlives the call.
func CheckExecute(sql string) (*Statement, error) {
	a, err := analyze(sql)
	if err != nil {
		return nil, err
	}
	if a.refused != nil {
		return nil, a.refused
	}
	if a.execErr != nil {
		return nil, a.execErr
	}
	return &a.st, nil
}

// whereClausePrefix is what CheckWhereClause parses the clause behind; positions in syntax
// errors are shifted back by its length.
const whereClausePrefix = "SELECT 1 WHERE "

// CheckWhereClause accepts clause if it is exactly one boolean expression that only reads, so it
// can be placed after WHERE in a query cairn builds.
func CheckWhereClause(clause string) error {
	if strings.TrimSpace(clause) == "" {
		return &Error{Reason: "the clause is empty", Hint: "give one boolean expression, e.g. status = 'open'"}
	}
	if strings.IndexByte(clause, 0) >= 0 {
		return nulError()
	}
	if err := checkShape(clause); err != nil {
		return err
	}
	// The newline ends a trailing -- comment here, as it must where cairn places the clause;
	// without it the comment would swallow whatever follows.
	tree, err := pg_query.Parse(whereClausePrefix + clause + "\n")
	if err != nil {
		return syntaxError(err, clause, utf8.RuneCountInString(whereClausePrefix))
	}
	if len(tree.Stmts) != 1 {
		return &Error{Reason: "the clause must be one boolean expression, but a semicolon starts another statement", Hint: "remove the semicolon and what follows it"}
	}
	sel := tree.Stmts[0].GetStmt().GetSelectStmt()
	if sel == nil {
		return &Error{Reason: "the clause must be one boolean expression", Hint: "give a condition, e.g. status = 'open'"}
	}
	if extra := extraSelectPart(sel); extra != "" {
		return &Error{
			Reason: "the clause must be one boolean expression, but it adds " + extra,
			Hint:   "remove it; give only a condition, e.g. status = 'open' AND created_at > now() - interval '1 day'",
		}
	}
	if sel.WhereClause == nil {
		return &Error{Reason: "the clause must be one boolean expression", Hint: "give a condition, e.g. status = 'open'"}
	}
	a := analyzeStmt(sel)
	if a.refused != nil {
		return a.refused
	}
	if a.roProblem != "" {
		return &Error{Reason: "the clause may only read, and " + a.roProblem, Hint: "make it a read-only condition"}
	}
	return nil
}

// extraSelectPart names any part of sel beyond the constant target list and the WHERE clause,
// or returns "". It looks at every populated field so a part added in a later PostgreSQL
// version is refused too.
func extraSelectPart(sel *pg_query.SelectStmt) string {
	var extra string
	sel.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch fd.Name() {
		case "where_clause":
			return true
		case "target_list":
			if v.List().Len() == 1 {
				return true
			}
		case "limit_option":
			if pg_query.LimitOption(v.Enum()) == pg_query.LimitOption_LIMIT_OPTION_DEFAULT {
				return true
			}
		case "op":
			if pg_query.SetOperation(v.Enum()) == pg_query.SetOperation_SETOP_NONE {
				return true
			}
		}
		extra = selectPartName(string(fd.Name()))
		return false
	})
	return extra
}

func selectPartName(field string) string {
	switch field {
	case "op", "larg", "rarg", "all":
		return "a UNION, INTERSECT or EXCEPT"
	case "sort_clause":
		return "ORDER BY"
	case "limit_count", "limit_offset", "limit_option":
		return "LIMIT, OFFSET or FETCH"
	case "group_clause", "group_distinct":
		return "GROUP BY"
	case "having_clause":
		return "HAVING"
	case "window_clause":
		return "WINDOW"
	case "locking_clause":
		return "a locking clause (FOR UPDATE/SHARE)"
	case "into_clause":
		return "INTO"
	}
	return "more than a condition (" + strings.ReplaceAll(field, "_", " ") + ")"
}

// analysis is a statement with the verdicts of the tools on it.
type analysis struct {
	st Statement
	// roProblem says why the statement is not read-only, completing "query runs only read-only
	// statements, and …"; roHint says what to do instead. Both are "" when it only reads.
	roProblem, roHint string
	// refused is why no tool runs the statement; execErr why execute refuses one that
	// refused does not cover.
	refused, execErr *Error
}

func nulError() *Error {
	return &Error{Reason: "the SQL contains a NUL byte", Hint: "remove it; PostgreSQL cannot receive it"}
}

func analyze(sql string) (*analysis, error) {
	if strings.TrimSpace(sql) == "" {
		return nil, &Error{Reason: "the SQL is empty", Hint: "send one SQL statement"}
	}
	// The parser reads a C string and would stop at a NUL, while Text would keep what follows.
	if strings.IndexByte(sql, 0) >= 0 {
		return nil, nulError()
	}
	if err := checkShape(sql); err != nil {
		return nil, err
	}
	tree, err := pg_query.Parse(sql)
	if err != nil {
		return nil, syntaxError(err, sql, 0)
	}
	switch len(tree.Stmts) {
	case 0:
		return nil, &Error{Reason: "the SQL holds no statement, only comments or semicolons", Hint: "send one SQL statement"}
	case 1:
	default:
		return nil, severalStatements(tree.Stmts)
	}
	raw := tree.Stmts[0]
	a := analyzeStmt(nodeMessage(raw.Stmt))
	a.st.Text = statementText(sql, raw)
	a.st.Footprint = footprintOf(nodeMessage(raw.Stmt))
	return a, nil
}

func severalStatements(stmts []*pg_query.RawStmt) error {
	cmds := make([]string, 0, len(stmts))
	for i, s := range stmts {
		if i == 5 {
			cmds = append(cmds, "…")
			break
		}
		cmds = append(cmds, classify(nodeMessage(s.Stmt)).command)
	}
	return &Error{
		Reason: fmt.Sprintf("the SQL holds %d statements (%s), and one call runs one statement", len(stmts), strings.Join(cmds, ", ")),
		Hint:   "send one statement per call, or use the transaction tool to run several in one transaction",
	}
}

// nodeMessage unwraps a Node to the message its oneof holds, e.g. *pg_query.SelectStmt.
func nodeMessage(n *pg_query.Node) proto.Message {
	m := n.ProtoReflect()
	fd := m.WhichOneof(m.Descriptor().Oneofs().Get(0))
	if fd == nil {
		return n
	}
	return m.Get(fd).Message().Interface()
}

// statementText cuts the statement out of sql by the parser's byte offsets.
func statementText(sql string, raw *pg_query.RawStmt) string {
	start, end := int(raw.StmtLocation), len(sql)
	if raw.StmtLen > 0 {
		end = start + int(raw.StmtLen)
	}
	if start < 0 || start > end || end > len(sql) {
		start, end = 0, len(sql)
	}
	text := strings.TrimSpace(sql[start:end])
	for strings.HasSuffix(text, ";") {
		text = strings.TrimSpace(strings.TrimSuffix(text, ";"))
	}
	return text
}

// syntaxError turns a parser error into an *Error that points into text. skip is how many
// characters the parsed string had before text.
func syntaxError(err error, text string, skip int) error {
	var pe *parser.Error
	if !errors.As(err, &pe) {
		return fmt.Errorf("parse SQL: %w", err)
	}
	where := ""
	if pos := pe.Cursorpos - skip; pe.Cursorpos > 0 && pos > 0 {
		line, col := lineColumn(text, pos)
		where = fmt.Sprintf(" (line %d, column %d)", line, col)
	}
	return &Error{Reason: pe.Message + where, Hint: "correct the SQL there; it must be valid PostgreSQL"}
}

// lineColumn converts PostgreSQL's 1-based character position into a line and column.
func lineColumn(text string, pos int) (line, col int) {
	line, col = 1, 1
	n := 1
	for _, r := range text {
		if n == pos {
			break
		}
		n++
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}

// analyzeStmt classifies one statement and works out each tool's verdict.
func analyzeStmt(stmt proto.Message) *analysis {
	if ex, ok := stmt.(*pg_query.ExplainStmt); ok {
		return analyzeExplain(ex)
	}
	c := classify(stmt)
	f := walkStatement(stmt)
	a := &analysis{st: Statement{Command: c.command, Tables: f.tables, Functions: f.functions}}
	switch c.kind {
	case kindRead:
		_, isSelect := stmt.(*pg_query.SelectStmt)
		a.st.Cursorable = isSelect && !f.into && f.locking == "" && f.nestedWrite == ""
	case kindWrite:
		a.roProblem, a.roHint = fmt.Sprintf("`%s` %s", c.command, c.does), "use the execute tool"
	case kindTx:
		a.refused = &Error{
			Reason: fmt.Sprintf("`%s` is transaction control, and cairn runs each call in its own transaction", c.command),
			Hint:   "drop it; to run several statements in one transaction, use the transaction tool",
		}
	case kindSession:
		a.refused = &Error{Reason: fmt.Sprintf("`%s` %s, and calls share pooled connections", c.command, c.does), Hint: c.hint}
	case kindCopy:
		a.refused = copyRefusal(stmt.(*pg_query.CopyStmt))
	}

	if a.refused == nil && a.roProblem == "" {
		switch {
		case f.into:
			a.roProblem, a.roHint = "`SELECT … INTO` creates a table", "drop INTO to read the rows, or create the table with CREATE TABLE … AS through the execute tool"
		case f.nestedWrite != "":
			a.roProblem, a.roHint = fmt.Sprintf("it has a data-modifying WITH query (`%s`)", f.nestedWrite), "use the execute tool"
		case f.locking != "":
			a.roProblem, a.roHint = fmt.Sprintf("`%s` locks rows", f.locking), "drop the locking clause; to lock rows before changing them, use the transaction tool"
		default:
			if name, r := deniedFunction(f.functions, false); r != nil {
				a.roProblem, a.roHint = fmt.Sprintf("`%s` %s", name, r.does), r.hint
			}
		}
	}
	if a.refused == nil {
		if name, r := deniedFunction(f.functions, true); r != nil {
			a.execErr = &Error{Reason: fmt.Sprintf("`%s` %s", name, r.does), Hint: r.hint}
		}
	}
	a.st.ReadOnly = a.refused == nil && a.roProblem == ""
	return a
}

// analyzeExplain judges EXPLAIN by what it explains, which runs only with ANALYZE.
func analyzeExplain(ex *pg_query.ExplainStmt) *analysis {
	inner := analyzeStmt(nodeMessage(ex.Query))
	a := &analysis{st: Statement{Command: "EXPLAIN", Tables: inner.st.Tables, Functions: inner.st.Functions}}
	if explainAnalyzes(ex.Options) {
		a.refused, a.execErr = inner.refused, inner.execErr
		if inner.roProblem != "" {
			a.roProblem = "`EXPLAIN ANALYZE` runs the statement it explains: " + inner.roProblem
			a.roHint = "use EXPLAIN without ANALYZE to see the plan, or the execute tool to run it"
		}
	}
	a.st.ReadOnly = a.refused == nil && a.roProblem == ""
	return a
}

// explainAnalyzes reports whether EXPLAIN's options turn ANALYZE on. A value it cannot read
// counts as on, since PostgreSQL would either run the statement or reject the option.
func explainAnalyzes(options []*pg_query.Node) bool {
	on := false
	for _, o := range options {
		d := o.GetDefElem()
		if d == nil || !strings.EqualFold(d.Defname, "analyze") {
			continue
		}
		on = true
		switch v := nodeMessage(d.Arg).(type) {
		case *pg_query.String:
			switch strings.ToLower(v.Sval) {
			case "false", "off", "no", "0":
				on = false
			}
		case *pg_query.Integer:
			on = v.Ival != 0
		case *pg_query.Boolean:
			on = v.Boolval
		case *pg_query.A_Const:
			if i := v.GetIval(); i != nil {
				on = i.Ival != 0
			}
		}
	}
	return on
}

func copyRefusal(c *pg_query.CopyStmt) *Error {
	const noFiles = "cairn gives no access to the server's files or shell; read rows with the query tool and write them with INSERT through the execute tool"
	switch {
	case c.IsProgram:
		return &Error{Reason: "`COPY … PROGRAM` runs a program on the database server", Hint: noFiles}
	case c.Filename != "" && c.IsFrom:
		return &Error{Reason: fmt.Sprintf("`COPY … FROM '%s'` reads a file on the database server", c.Filename), Hint: noFiles}
	case c.Filename != "":
		return &Error{Reason: fmt.Sprintf("`COPY … TO '%s'` writes a file on the database server", c.Filename), Hint: noFiles}
	case c.IsFrom:
		return &Error{Reason: "`COPY … FROM STDIN` needs a data stream a tool call cannot carry", Hint: "insert the rows with INSERT … VALUES through the execute tool"}
	}
	return &Error{Reason: "`COPY … TO STDOUT` needs a data stream a tool call cannot carry", Hint: "read the rows with SELECT through the query tool"}
}
