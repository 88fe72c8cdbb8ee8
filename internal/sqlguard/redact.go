package sqlguard

import (
	"strconv"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// maxRedactedLen bounds the text Redact returns, so that one huge statement cannot flood a log.
const maxRedactedLen = 2000

// Redact returns what of a statement may be logged: its text with every literal — strings
// (dollar-quoted bodies of DO and CREATE FUNCTION included), numbers, bit strings — replaced by
// $n (numbered after the statement's own parameters) and comments removed, cut to 2,000
// characters; and its pg_query fingerprint, which identifies statements that differ only in
// their literals. pg_query's own Normalize is not enough here: it keeps comments and leaves the
// literals of many utility statements (CREATE TABLE … DEFAULT, COMMENT ON, CREATE VIEW,
// ALTER SYSTEM) in place. Either result is "" when the SQL cannot be scanned or parsed, or is
// too long or deep to parse safely.
func Redact(sql string) (text, fingerprint string) {
	tokens, err := scanSafe(sql)
	if err != nil {
		return "", ""
	}
	if fp, err := pg_query.Fingerprint(sql); err == nil {
		fingerprint = fp
	}
	n := 0
	for _, tok := range tokens {
		if tok.Token == pg_query.Token_PARAM && int(tok.Start)+1 <= int(tok.End) && int(tok.End) <= len(sql) {
			if k, err := strconv.Atoi(sql[tok.Start+1 : tok.End]); err == nil && k > n {
				n = k
			}
		}
	}
	var b strings.Builder
	prev := 0
	space := func() {
		if b.Len() > 0 && !strings.HasSuffix(b.String(), " ") {
			b.WriteByte(' ')
		}
	}
	for _, tok := range tokens {
		start, end := int(tok.Start), int(tok.End)
		if start < prev || end < start || end > len(sql) {
			return "", fingerprint // offsets the scanner should never give; log nothing rather than guess
		}
		// Between tokens is whitespace; anything else (never seen) is left out.
		if gap := sql[prev:start]; gap != "" {
			space()
		}
		prev = end
		switch tok.Token {
		case pg_query.Token_SQL_COMMENT, pg_query.Token_C_COMMENT:
			space()
		case pg_query.Token_SCONST, pg_query.Token_USCONST, pg_query.Token_BCONST, pg_query.Token_XCONST,
			pg_query.Token_ICONST, pg_query.Token_FCONST:
			n++
			b.WriteString("$" + strconv.Itoa(n))
		default:
			b.WriteString(sql[start:end])
		}
		if b.Len() > maxRedactedLen {
			break
		}
	}
	text = strings.TrimSpace(b.String())
	if len(text) > maxRedactedLen {
		cut := maxRedactedLen
		for cut > 0 && !isRuneStart(text[cut]) {
			cut--
		}
		text = text[:cut] + "…"
	}
	return text, fingerprint
}

func isRuneStart(c byte) bool { return c&0xC0 != 0x80 }
