package backup

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// querier is what counting needs: a transaction, a connection or a pool.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// tableNames lists the tables whose rows pg_dump dumps from schema: ordinary and partitioned
// tables that no extension owns. Foreign tables are left out, as pg_dump leaves their data out.
func tableNames(ctx context.Context, q querier, schema string) ([]string, error) {
	rows, err := q.Query(ctx, tableNamesSQL, schema)
	if err != nil {
		return nil, fmt.Errorf("list the tables of schema %s: %w", schema, err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("list the tables of schema %s: %w", schema, err)
	}
	return names, nil
}

// countRows counts the rows of every table in schema.
func countRows(ctx context.Context, q querier, schema string) (map[string]int64, error) {
	names, err := tableNames(ctx, q, schema)
	if err != nil {
		return nil, err
	}
	counts := make(map[string]int64, len(names))
	for _, name := range names {
		var n int64
		if err := q.QueryRow(ctx, fmt.Sprintf(countTableSQL, pgx.Identifier{schema, name}.Sanitize())).Scan(&n); err != nil {
			return nil, fmt.Errorf("count the rows of %s: %w", name, err)
		}
		counts[name] = n
	}
	return counts, nil
}

// countRowsUnlimited counts in a transaction without the session's statement timeout, which is
// for MCP calls, not for counting a big table.
func countRowsUnlimited(ctx context.Context, db database, schema string) (map[string]int64, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if _, err := tx.Exec(ctx, noStatementTimeoutSQL); err != nil {
		return nil, fmt.Errorf("count rows: %w", err)
	}
	return countRows(ctx, tx, schema)
}

// CountMismatchError says a restored database does not hold what the manifest says the archive
// holds.
type CountMismatchError struct {
	// Diffs describes each table that differs, e.g. "workflows: 3 rows, the manifest says 4".
	Diffs []string
}

func (e *CountMismatchError) Error() string {
	return "the restored tables do not match the manifest: " + strings.Join(e.Diffs, "; ")
}

// compareCounts checks counts against the manifest's, table by table, both ways.
func compareCounts(want, got map[string]int64) error {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("%s: missing", name))
		case g != want[name]:
			diffs = append(diffs, fmt.Sprintf("%s: %d rows, the manifest says %d", name, g, want[name]))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(got)) {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("%s: not in the manifest", name))
		}
	}
	if diffs != nil {
		return &CountMismatchError{Diffs: diffs}
	}
	return nil
}

// schemaObject is something a schema holds, as DROP names it.
type schemaObject struct {
	Kind     string // TABLE, VIEW, SEQUENCE, ROUTINE, TYPE, DOMAIN, ...
	Identity string // schema-qualified and quoted; routines with their argument types
}

// schemaObjects lists what schema holds that no extension owns: relations, routines and
// standalone types, tables first. Indexes, constraints, triggers and table row types belong to
// their tables; operators and text search objects are not listed (neither cairn nor River
// makes any).
func schemaObjects(ctx context.Context, q querier, schema string) ([]schemaObject, error) {
	rows, err := q.Query(ctx, schemaObjectsSQL, schema)
	if err != nil {
		return nil, fmt.Errorf("list what schema %s holds: %w", schema, err)
	}
	objs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (schemaObject, error) {
		var o schemaObject
		err := r.Scan(&o.Kind, &o.Identity)
		return o, err
	})
	if err != nil {
		return nil, fmt.Errorf("list what schema %s holds: %w", schema, err)
	}
	return objs, nil
}
