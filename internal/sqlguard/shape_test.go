package sqlguard

import (
	"errors"
	"strings"
	"testing"
)

// shapes generate statements of n repetitions of one construct: the ones that nest make the
// parse tree n levels deep (and, unchecked, crashed the parser at a few tens of thousands), the
// others only make it wide.
var shapes = []struct {
	name string
	deep bool
	gen  func(n int) string
}{
	{"operator chain", true, func(n int) string { return "SELECT 1" + strings.Repeat("+1", n) }},
	{"concatenation", true, func(n int) string { return "SELECT 'a'" + strings.Repeat("||'a'", n) }},
	{"json arrows", true, func(n int) string { return "SELECT x" + strings.Repeat("->'a'", n) + " FROM t" }},
	{"casts", true, func(n int) string { return "SELECT 1" + strings.Repeat("::int", n) }},
	{"IS NULL chain", true, func(n int) string { return "SELECT 1" + strings.Repeat(" IS NULL", n) }},
	{"NOT chain", true, func(n int) string { return "SELECT " + strings.Repeat("NOT ", n) + "true" }},
	{"unary minus", true, func(n int) string { return "SELECT " + strings.Repeat("- ", n) + "1" }},
	{"parentheses", true, func(n int) string { return "SELECT " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) }},
	{"nested operators", true, func(n int) string { return "SELECT " + strings.Repeat("(1+", n) + "1" + strings.Repeat(")", n) }},
	{"subqueries", true, func(n int) string { return strings.Repeat("SELECT (", n) + "SELECT 1" + strings.Repeat(")", n) }},
	{"function calls", true, func(n int) string { return "SELECT " + strings.Repeat("abs(", n) + "1" + strings.Repeat(")", n) }},
	{"arrays", true, func(n int) string { return "SELECT " + strings.Repeat("ARRAY[", n) + "1" + strings.Repeat("]", n) }},
	{"nested CASE", true, func(n int) string {
		return "SELECT " + strings.Repeat("CASE WHEN true THEN ", n) + "1" + strings.Repeat(" END", n)
	}},
	{"UNION chain", true, func(n int) string { return "SELECT 1" + strings.Repeat(" UNION ALL SELECT 1", n) }},
	{"JOIN chain", true, func(n int) string { return "SELECT 1 FROM t a" + strings.Repeat(" JOIN t b ON true", n) }},
	{"BETWEEN chain", true, func(n int) string { return "SELECT 1 WHERE 1" + strings.Repeat(" BETWEEN 1 AND 1", n) }},

	{"IN list", false, func(n int) string { return "SELECT 1 WHERE 1 IN (1" + strings.Repeat(",1", n) + ")" }},
	{"OR chain", false, func(n int) string { return "SELECT 1 WHERE x = 0" + strings.Repeat(" OR x = 1", n) }},
	{"AND chain", false, func(n int) string { return "SELECT 1 WHERE true" + strings.Repeat(" AND 1=1", n) }},
	{"CASE branches", false, func(n int) string { return "SELECT CASE" + strings.Repeat(" WHEN x = 1 THEN 1", n) + " END FROM t" }},
	{"VALUES rows", false, func(n int) string { return "VALUES (1, 'a')" + strings.Repeat(",(1, 'a')", n) }},
	{"columns", false, func(n int) string { return "SELECT 1+1" + strings.Repeat(", 1+1", n) }},
	{"subscripts", false, func(n int) string { return "SELECT a" + strings.Repeat("[1]", n) + " FROM t" }},
}

func TestDeepSQLIsRefusedBeforeParsing(t *testing.T) {
	for _, s := range shapes {
		for _, n := range []int{10, 200, 5_000, 50_000} {
			sql := s.gen(n)
			if len(sql) > MaxSQLBytes || (!s.deep && n > 5_000) { // wide ones only take longer
				continue
			}
			_, err := Parse(sql)
			switch {
			case s.deep && n >= MaxNesting:
				wantError(t, s.name, err, "nests too deeply", "at most 1000")
			case err != nil:
				// Some shapes are not valid SQL (a BETWEEN chain); they may fail, but cleanly.
				var ge *Error
				if !errors.As(err, &ge) || strings.Contains(err.Error(), "nests too deeply") {
					t.Errorf("%s × %d: %v", s.name, n, err)
				}
			}
		}
	}
}

// The crash reported against the binary: a reader's `query` of `SELECT 1+1+…+1` with 50,000
// terms killed the process inside the parser; it and each entry point are a clear error now.
func TestOperatorChainIsAClearError(t *testing.T) {
	chain := "1" + strings.Repeat("+1", 50_000)
	_, err := CheckQuery("SELECT " + chain)
	wantError(t, "query", err, "nests too deeply", "about 50000 levels", "= ANY($1)")
	_, err = CheckExecute("INSERT INTO t VALUES (" + chain + ")")
	wantError(t, "execute", err, "nests too deeply")
	wantError(t, "where_clause", CheckWhereClause("x = "+chain), "nests too deeply")
	if text, fp := Redact("SELECT " + chain); text != "" || fp != "" {
		t.Errorf("Redact of a too-deep statement = %.40q, %q; want nothing", text, fp)
	}
}

func TestTooLongSQL(t *testing.T) {
	_, err := CheckQuery("SELECT '" + strings.Repeat("x", MaxSQLBytes) + "'")
	wantError(t, "long", err, "bytes long", "parameters")
}

// FuzzStatementCheck builds statements from the shapes above with n repetitions (up to 65,535,
// past the depth that crashed the parser) around caller text full of odd quoting, and runs
// every entry point of the check on them: none may crash, and every refusal must be an *Error
// that says what to fix.
func FuzzStatementCheck(f *testing.F) {
	for i, s := range shapes {
		f.Add(uint8(i), uint16(3), "")
		if s.deep {
			f.Add(uint8(i), uint16(5_000), "")
		}
	}
	for _, s := range []string{
		`$$ ) ( $$`, `$q$ $$ ' " $q$`, `E'\'' || '`, `U&"d\0061t\+000061"`, `/* (( /* )) */ */`,
		"-- ((\n", `'it''s'`, `"a""b"`, `B'101'`, `X'1F'`, `$1`, `((`, `))`, `END`, `CASE`, `;`,
	} {
		f.Add(uint8(0), uint16(5), s)
	}
	f.Fuzz(func(t *testing.T, shape uint8, n uint16, text string) {
		s := shapes[int(shape)%len(shapes)]
		sql := s.gen(int(n))
		half := len(sql) / 2
		for _, candidate := range []string{sql, text, sql + " " + text, sql[:half] + text + sql[half:]} {
			checkClean(t, candidate)
		}
	})
}

// FuzzStatementText runs the check on arbitrary text.
func FuzzStatementText(f *testing.F) {
	for _, s := range shapes {
		f.Add(s.gen(3))
		if s.deep {
			f.Add(s.gen(1_500)) // past MaxNesting: the scan refuses it at once
		} else {
			// Wide text parses slowly (~50 ms at 1,500 repetitions), and the fuzzer minimizes
			// every new input it finds from it one cut at a time.
			f.Add(s.gen(150))
		}
	}
	f.Fuzz(checkClean)
}

// maxFuzzBytes bounds the text a fuzz run sends through the parser. Checking costs about 2 µs a
// byte (linear up to MaxSQLBytes), so a mutated input of hundreds of KB that the scan lets
// through takes seconds, and a fuzz worker busy that long at the end of -fuzztime fails the run
// ("context deadline exceeded"). Longer text is still fuzzed where the scan refuses it (too deep,
// too long), which is fast and is where the crash was; TestDeepSQLIsRefusedBeforeParsing and
// TestOperatorChainIsAClearError cover long statements that parse.
const maxFuzzBytes = 32 << 10

func checkClean(t *testing.T, sql string) {
	if len(sql) > maxFuzzBytes && checkShape(sql) == nil {
		return
	}
	var ge *Error
	for name, check := range map[string]func(string) error{
		"query":        func(s string) error { _, err := CheckQuery(s); return err },
		"execute":      func(s string) error { _, err := CheckExecute(s); return err },
		"parse":        func(s string) error { _, err := Parse(s); return err },
		"where_clause": CheckWhereClause,
	} {
		if err := check(sql); err != nil && !errors.As(err, &ge) {
			t.Fatalf("%s of %.200q: %v (%T), want an *Error the caller can act on", name, sql, err, err)
		}
	}
	Redact(sql)
}
