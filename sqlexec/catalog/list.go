package catalog

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Schema is one schema of the database.
type Schema struct {
	Name  string `json:"name"`
	Owner string `json:"owner"`
	// Tables counts the relations ListTables would list: tables, views, materialized views,
	// partitioned and foreign tables (partitions included).
	Tables int `json:"table_count"`
}

// ListSchemas lists the database's schemas by name. pg_catalog, information_schema, the TOAST
// schemas and the temporary schemas of sessions are left out as noise; the first two can still
// be listed with ListTables and queried.
func ListSchemas(ctx context.Context, q Querier) ([]Schema, error) {
	rows, err := q.Query(ctx, listSchemasSQL)
	if err != nil {
		return nil, wrap(err, "list schemas")
	}
	schemas, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Schema, error) {
		var s Schema
		err := r.Scan(&s.Name, &s.Owner, &s.Tables)
		return s, err
	})
	if err != nil {
		return nil, wrap(err, "list schemas")
	}
	return nonNil(schemas), nil
}

// TableSummary is one relation of a schema, as list_tables shows it.
type TableSummary struct {
	Name   string `json:"name"`
	Schema string `json:"schema"`
	// Kind is "table", "view", "materialized view", "partitioned table" or "foreign table".
	Kind string `json:"kind"`
	// RowCount is the number of rows: counted when RowCountExact, else the planner's estimate;
	// -1 when neither is available (see ListTables).
	RowCount int64 `json:"row_count"`
	// RowCountExact is false when RowCount is an estimate from the planner's statistics
	// (pg_class.reltuples) or unknown.
	RowCountExact bool   `json:"row_count_exact"`
	Comment       string `json:"comment,omitempty"`
	// PartitionOf is the parent of a partition, qualified when in another schema.
	PartitionOf string `json:"partition_of,omitempty"`
}

// ExactCountBelow is the estimated row count under which ListTables counts a table's rows with
// count(*) rather than reporting the estimate.
const ExactCountBelow = 10_000

// exactCountMaxBytes caps the on-disk size of a relation ListTables counts without being asked
// to: statistics can be stale or missing (a table analyzed while empty, or never, then bulk
// loaded), and the size on disk cannot be.
const exactCountMaxBytes = 64 << 20

// countBatch bounds how many relations one count statement reads. Each count(*) holds its lock
// until the statement's transaction ends, and thousands at once (a schema of partitions) could
// run the server's lock table out of memory.
const countBatch = 100

// ListTables lists the tables, views, materialized views, partitioned and foreign tables of
// one schema ("" means "public"), partitions included, by name.
//
// Row counts: a table, materialized view or partitioned table is counted with count(*) when
// its estimate is unknown (never analyzed) or below ExactCountBelow rows, provided it is small
// on disk (statistics can be stale); otherwise RowCount is the planner's estimate and
// RowCountExact is false. Views are not counted, since a view can be arbitrarily expensive to
// run, nor are foreign tables, since that reads the remote side. exactAll counts every
// relation, views and foreign tables included, and so may run into the statement timeout on
// big ones. A relation the role may not SELECT from, or a materialized view never refreshed,
// is never counted. RowCount is -1 when there is neither a count nor an estimate: a view, a
// foreign table without statistics, a table never analyzed that is too big to count unasked.
// The counts run after the catalog query, one statement per hundred relations.
func ListTables(ctx context.Context, q Querier, schema string, exactAll bool) ([]TableSummary, error) {
	if schema == "" {
		schema = "public"
	}
	if err := badNames(schema, ""); err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, listSQL, schema)
	if err != nil {
		return nil, wrap(err, "list tables of %s", schema)
	}
	var (
		tables    []TableSummary
		toCount   []int // indexes into tables
		schemaHit bool
	)
	for rows.Next() {
		schemaHit = true
		var (
			t                            TableSummary
			name, relkind                *string
			estimate                     *float64
			bytes                        int64
			foreign, readable, populated bool
		)
		if err := rows.Scan(&t.Schema, &name, &relkind, &t.Comment, &t.PartitionOf, &estimate, &bytes, &foreign, &readable, &populated); err != nil {
			rows.Close()
			return nil, wrap(err, "list tables of %s", schema)
		}
		if name == nil {
			continue // the schema exists but is empty
		}
		t.Name, t.Kind = *name, kindName(*relkind)
		t.RowCount = -1
		if estimate != nil {
			t.RowCount = int64(math.Round(*estimate))
		}
		counted := *relkind == "r" || *relkind == "m" || *relkind == "p"
		small := (estimate == nil || *estimate < ExactCountBelow) && bytes <= exactCountMaxBytes && !foreign
		if readable && populated && (exactAll || counted && small) {
			toCount = append(toCount, len(tables))
		}
		tables = append(tables, t)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list tables of %s", schema)
	}
	if !schemaHit {
		return nil, schemaNotFound(ctx, q, schema)
	}
	for start := 0; start < len(toCount); start += countBatch {
		if err := countRows(ctx, q, tables, toCount[start:min(start+countBatch, len(toCount))]); err != nil {
			return nil, wrap(err, "list tables of %s: count rows", schema)
		}
	}
	return nonNil(tables), nil
}

// countRows sets the exact row count of tables[i] for each i in which, in one statement. The
// names come from the catalog, not the caller, and are quoted.
func countRows(ctx context.Context, q Querier, tables []TableSummary, which []int) error {
	var b strings.Builder
	for n, i := range which {
		if n > 0 {
			b.WriteString(countRowsUnionSQL)
		}
		fmt.Fprintf(&b, countRowsSQL, i, pgx.Identifier{tables[i].Schema, tables[i].Name}.Sanitize())
	}
	// The statement text changes with the schema's contents: run it unprepared rather than fill
	// the connection's statement cache with one-off statements.
	rows, err := q.Query(ctx, b.String(), pgx.QueryExecModeExec)
	if err != nil {
		return err
	}
	var i int
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&i, &n}, func() error {
		tables[i].RowCount, tables[i].RowCountExact = n, true
		return nil
	})
	return err
}
