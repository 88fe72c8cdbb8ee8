package catalog

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/cairn-mcp/cairn/internal/names"
	"github.com/jackc/pgx/v5"
)

// NotFoundError says a schema, table or column does not exist, with near matches so the caller
// can fix the name. The catalog returns it unwrapped, so a type assertion works as well as
// errors.As.
type NotFoundError struct {
	Kind        string   // "schema", "table" or "column"
	Name        string   // the name that was not found
	Schema      string   // the schema searched ("" for the search path); for a missing schema, the schema itself
	Table       string   // for a column, its table; for a missing schema, the table that was looked up in it, if any
	Suggestions []string // up to three existing names, nearest first; qualified as schema.name when in another schema
}

// Error reads, for example, `table "public.workflow" does not exist; did you mean "workflows"?
// (list_tables shows every table)`.
// CallerCanFix marks NotFoundError as the caller's to fix (callerr).
func (*NotFoundError) CallerCanFix() {}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	switch e.Kind {
	case "schema":
		fmt.Fprintf(&b, "schema %q does not exist", e.Name)
	case "column":
		fmt.Fprintf(&b, "column %q does not exist in table %q", e.Name, qualified(e.Schema, e.Table))
	default:
		fmt.Fprintf(&b, "%s %q does not exist", e.Kind, qualified(e.Schema, e.Name))
		if e.Schema == "" {
			b.WriteString(" in the search path")
		}
	}
	if n := len(e.Suggestions); n > 0 {
		b.WriteString("; did you mean ")
		for i, s := range e.Suggestions {
			switch i {
			case 0:
			case n - 1:
				b.WriteString(" or ")
			default:
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%q", s)
		}
		b.WriteString("?")
	}
	switch e.Kind {
	case "schema":
		b.WriteString(" (list_schemas shows every schema)")
	case "column":
		b.WriteString(" (describe_table shows every column)")
	default:
		b.WriteString(" (list_tables shows every table)")
	}
	return b.String()
}

// Column returns the column with exactly this name, or a *NotFoundError suggesting the table's
// nearest column names.
func (t *Table) Column(name string) (*Column, error) {
	names := make([]string, len(t.Columns))
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i], nil
		}
		names[i] = t.Columns[i].Name
	}
	return nil, &NotFoundError{Kind: "column", Name: name, Schema: t.Schema, Table: t.Table, Suggestions: suggest(name, names, nil)}
}

// tableNotFound builds the error for a relation that did not resolve: a missing schema is
// reported as such, otherwise the nearest relation names are suggested. It runs only on the
// error path, so it may read every relation name in the database.
func tableNotFound(ctx context.Context, q Querier, schema, table string) error {
	rows, err := q.Query(ctx, allRelationsSQL, schema)
	if err != nil {
		return wrap(err, "look up table %s", qualified(schema, table))
	}
	var (
		schemas      = map[string]bool{}
		local, other []string
	)
	for rows.Next() {
		var nsp string
		var rel *string
		var here bool
		if err := rows.Scan(&nsp, &rel, &here); err != nil {
			rows.Close()
			return wrap(err, "look up table %s", qualified(schema, table))
		}
		schemas[nsp] = true
		switch {
		case rel == nil:
		case here:
			local = append(local, *rel)
		case strings.EqualFold(*rel, table):
			// Only a near-exact name is worth suggesting from another schema; anything looser
			// would drown the suggestions from the schema the caller meant.
			other = append(other, qualified(nsp, *rel))
		}
	}
	if err := rows.Err(); err != nil {
		return wrap(err, "look up table %s", qualified(schema, table))
	}
	if schema != "" && !schemas[schema] {
		return &NotFoundError{Kind: "schema", Name: schema, Schema: schema, Table: table, Suggestions: suggest(schema, mapKeys(schemas), nil)}
	}
	return &NotFoundError{Kind: "table", Name: table, Schema: schema, Suggestions: suggest(table, local, other)}
}

// schemaNotFound builds the error for a schema that does not exist, suggesting the nearest of
// all schemas, pg_catalog and information_schema included since they can be listed too.
func schemaNotFound(ctx context.Context, q Querier, schema string) error {
	rows, err := q.Query(ctx, allSchemasSQL)
	if err != nil {
		return wrap(err, "look up schema %s", schema)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return wrap(err, "look up schema %s", schema)
	}
	return &NotFoundError{Kind: "schema", Name: schema, Schema: schema, Suggestions: suggest(schema, names, nil)}
}

func mapKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// maxSuggestions bounds how many names an error offers.
const maxSuggestions = 3

// suggest picks up to maxSuggestions names close to want. Only the names of the nearest kind
// are offered, so that "workflow" suggests "workflows" without also "workflow_steps", and
// "steps" suggests "workflow_steps" without also "items" (two typos away). candidates are the
// names where the lookup searched; elsewhere are names known to match want but for case, from
// other schemas, ranked as near as a one-typo candidate and after it.
func suggest(want string, candidates, elsewhere []string) []string {
	type hit struct {
		name      string
		rank      int
		elsewhere bool
	}
	if want == "" {
		return []string{}
	}
	w := strings.ToLower(want)
	var hits []hit
	for _, c := range candidates {
		if r, ok := rank(w, strings.ToLower(c)); ok && c != want {
			hits = append(hits, hit{c, r, false})
		}
	}
	for _, c := range elsewhere {
		hits = append(hits, hit{c, 1, true})
	}
	lenDiff := func(s string) int { return names.Abs(utf8.RuneCountInString(s) - utf8.RuneCountInString(want)) }
	slices.SortFunc(hits, func(a, b hit) int {
		return cmp.Or(
			cmp.Compare(a.rank, b.rank),
			compareBool(a.elsewhere, b.elsewhere),
			cmp.Compare(lenDiff(a.name), lenDiff(b.name)),
			strings.Compare(a.name, b.name),
		)
	})
	out := make([]string, 0, maxSuggestions)
	for _, h := range hits {
		if len(out) == maxSuggestions || h.rank > hits[0].rank {
			break
		}
		out = append(out, h.name)
	}
	return out
}

// rank says how near the lower-cased name c is to the lower-cased w, lower being nearer: equal
// (0), one typo or a plural "s" apart (1), one containing the other as "steps" and
// "workflow_steps" (2), two typos (3), three (4). ok is false when c is not near at all.
func rank(w, c string) (r int, ok bool) {
	if w == c {
		return 0, true
	}
	// About one typo per three characters, at most three: "entity" is near "entities".
	limit := min(3, utf8.RuneCountInString(w)/3+1)
	d := names.EditDistance(w, c, limit)
	switch {
	case d == 1:
		return 1, true
	// Below three characters nearly every name contains the other.
	case min(utf8.RuneCountInString(w), utf8.RuneCountInString(c)) >= 3 && (strings.Contains(c, w) || strings.Contains(w, c)):
		return 2, true
	case d <= limit:
		return d + 1, true
	}
	return 0, false
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case a:
		return 1
	}
	return -1
}
