package sqlguard

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// MaxSQLBytes is the longest SQL text cairn parses. Values belong in parameters, so a statement
// longer than this is almost always data written into the text.
const MaxSQLBytes = 1 << 20

// MaxNesting bounds how deeply a statement may nest, as estimated by nesting: operators,
// parentheses, set operations and joins. The parser builds its tree recursively and hands it
// over through recursive serialisation; at some tens of thousands of levels that overflows the
// C stack and kills the process (a chain of 30,000 `+1` did), and beyond about 5,000 levels
// the tree cannot be decoded anyway. Real queries stay far below this.
const MaxNesting = 1000

// checkShape refuses SQL too long or too deeply nested to parse safely, before the parser sees
// it.
func checkShape(sql string) error {
	_, err := scanSafe(sql)
	return err
}

// scanSafe returns the tokens of sql if it is short and shallow enough to parse safely. It runs
// PostgreSQL's own lexer, which is flat (no recursion, whatever the input), so quoting and
// comments are read exactly as the parser will read them.
func scanSafe(sql string) ([]*pg_query.ScanToken, error) {
	if len(sql) > MaxSQLBytes {
		return nil, &Error{
			Reason: fmt.Sprintf("the SQL is %d bytes long, and cairn parses at most %d bytes per statement", len(sql), MaxSQLBytes),
			Hint:   "pass long values as parameters ($1, $2, …) instead of writing them into the text, or split the work into several statements",
		}
	}
	if !utf8.ValidString(sql) {
		return nil, &Error{Reason: "the SQL is not valid UTF-8", Hint: "send the statement as UTF-8 text"}
	}
	scan, err := pg_query.Scan(sql)
	if err != nil {
		return nil, syntaxError(err, sql, 0)
	}
	if depth := nesting(scan.Tokens); depth > MaxNesting {
		return nil, &Error{
			Reason: fmt.Sprintf("the SQL nests too deeply to check safely (about %d levels of operators, parentheses, set operations and joins; at most %d)", depth, MaxNesting),
			Hint:   "shorten long chains: pass many values as one array parameter (= ANY($1)) or an IN list, sum with a subquery over unnest(…), and UNION fewer queries per call",
		}
	}
	return scan.Tokens, nil
}

// nesting returns an upper bound of how deep the parse tree of tokens nests, in operators and
// brackets: each open bracket (parenthesis, square bracket, CASE) adds a level, and within a
// level every operator-like token adds one, until a separator that the grammar never lets an
// operator chain span (a comma, WHEN/THEN/ELSE inside CASE, a semicolon) or AND/OR, which the
// parser flattens into one list ("a OR b OR c" is one node). The AND of BETWEEN is not a
// separator: "x BETWEEN a AND y BETWEEN b AND …" nests.
func nesting(tokens []*pg_query.ScanToken) int {
	type level struct {
		open    pg_query.Token // what opened it; NUL for the statement itself
		ops     int            // operator-like tokens since the last separator
		between int            // BETWEENs waiting for their AND
	}
	stack := []level{{}}
	sum, max := 0, 0 // sum: levels open plus the ops counted in each
	for _, t := range tokens {
		top := &stack[len(stack)-1]
		switch tok := t.Token; tok {
		case '(', '[', pg_query.Token_CASE:
			stack = append(stack, level{open: tok})
			sum++
		case ')', ']', pg_query.Token_END_P:
			// A closer that does not match is a syntax error the parser reports; ignoring it
			// keeps the count from going down.
			if len(stack) > 1 && top.open == opener(tok) {
				sum -= 1 + top.ops
				stack = stack[:len(stack)-1]
			}
		case ',', pg_query.Token_OR, pg_query.Token_WHEN, pg_query.Token_THEN, pg_query.Token_ELSE:
			sum -= top.ops
			top.ops = 0
		case pg_query.Token_AND:
			if top.between > 0 {
				top.between--
				break
			}
			sum -= top.ops
			top.ops = 0
		case ';':
			stack, sum = stack[:1], 0
			stack[0] = level{}
		default:
			if !nests(tok) {
				continue
			}
			if tok == pg_query.Token_BETWEEN {
				top.between++
			}
			top.ops++
			sum++
		}
		if sum > max {
			max = sum
		}
	}
	return max
}

func opener(closer pg_query.Token) pg_query.Token {
	switch closer {
	case ')':
		return '('
	case ']':
		return '['
	}
	return pg_query.Token_CASE
}

// nests reports whether a token can make the parse tree one level deeper within its bracket: an
// operator, a cast, or a keyword that builds an expression, a set operation or a join around
// what precedes it.
func nests(t pg_query.Token) bool {
	switch t {
	case '+', '-', '*', '/', '%', '^', '<', '>', '=', ':',
		pg_query.Token_Op, pg_query.Token_TYPECAST, pg_query.Token_LESS_EQUALS, pg_query.Token_GREATER_EQUALS,
		pg_query.Token_NOT_EQUALS, pg_query.Token_EQUALS_GREATER, pg_query.Token_OPERATOR,
		pg_query.Token_NOT, pg_query.Token_IS, pg_query.Token_ISNULL, pg_query.Token_NOTNULL,
		pg_query.Token_LIKE, pg_query.Token_ILIKE, pg_query.Token_SIMILAR, pg_query.Token_BETWEEN,
		pg_query.Token_IN_P, pg_query.Token_OVERLAPS, pg_query.Token_AT, pg_query.Token_COLLATE,
		pg_query.Token_ESCAPE, pg_query.Token_ANY, pg_query.Token_SOME, pg_query.Token_ALL,
		pg_query.Token_EXISTS, pg_query.Token_ARRAY, pg_query.Token_DISTINCT,
		pg_query.Token_UNION, pg_query.Token_INTERSECT, pg_query.Token_EXCEPT,
		pg_query.Token_JOIN, pg_query.Token_LATERAL_P:
		return true
	}
	return false
}

// Shape is a statement with its literal values left out: its tokens (comments dropped), each
// literal standing for its kind. Statements of one shape differ only in literal values, which
// change none of this package's verdicts — except where a literal is read as a name or an
// option, so such statements have no shape (ShapeOf).
type Shape struct {
	// Key identifies the shape.
	Key    string
	sql    string
	tokens []*pg_query.ScanToken // comments dropped
}

// ShapeOf returns sql's shape. ok is false when a verdict could depend on a literal's value —
// EXPLAIN (its options may be literals: ANALYZE 0), nextval, setval and pg_notify (which read a
// literal as a sequence or channel name) — and when sql is not safe to parse; Check* says why.
func ShapeOf(sql string) (Shape, bool) {
	if strings.IndexByte(sql, 0) >= 0 {
		return Shape{}, false
	}
	all, err := scanSafe(sql)
	if err != nil {
		return Shape{}, false
	}
	tokens := make([]*pg_query.ScanToken, 0, len(all))
	var b strings.Builder
	for _, t := range all {
		switch t.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			continue
		case pg_query.Token_EXPLAIN:
			return Shape{}, false
		case pg_query.Token_ICONST, pg_query.Token_FCONST, pg_query.Token_SCONST, pg_query.Token_USCONST,
			pg_query.Token_BCONST, pg_query.Token_XCONST:
			b.WriteString("\x00$")
			b.WriteString(strconv.Itoa(int(t.Token)))
		default:
			text := sql[t.Start:t.End]
			switch strings.ToLower(strings.Trim(text, `"`)) {
			case "nextval", "setval", "pg_notify":
				return Shape{}, false
			}
			b.WriteByte(0)
			b.WriteString(text)
		}
		tokens = append(tokens, t)
	}
	return Shape{Key: b.String(), sql: sql, tokens: tokens}, true
}

// Verdict is a statement's analysis kept for other statements of its shape.
type Verdict struct {
	st *Statement
}

// Keep returns st, the analysis of the statement sh is the shape of, as a Verdict for others of
// that shape; ok is false if its text is not where For would cut it.
func Keep(sh Shape, st *Statement) (v Verdict, ok bool) {
	if st.Text == "" || sh.text() != st.Text {
		return Verdict{}, false
	}
	return Verdict{st: st}, true
}

// For returns the verdict for a statement of the same shape: the kept analysis with that
// statement's own text.
func (v Verdict) For(sh Shape) *Statement {
	st := *v.st
	st.Text = sh.text()
	return &st
}

// text cuts the statement out as the parser places it (statementText): from just after the
// semicolons before it, comments included, to the semicolon after it, trimmed.
func (sh Shape) text() string {
	start, begun := 0, false
	for _, t := range sh.tokens {
		switch {
		case t.Token != pg_query.Token_ASCII_59:
			begun = true
		case !begun:
			start = int(t.End)
		default:
			return strings.TrimSpace(sh.sql[start:t.Start])
		}
	}
	return strings.TrimSpace(sh.sql[start:])
}
