package sqlexec

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/internal/pgjson"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
	"github.com/cairn-mcp/cairn/sqlexec/catalog"
)

// VectorSearch is a nearest-neighbour search by cosine distance over a table's vector column.
type VectorSearch struct {
	Schema          string
	Table           string
	EmbeddingColumn string
	QueryEmbedding  []float64
	Limit           int    // default 10
	WhereClause     string // one boolean expression over the table's columns, or ""
}

// MaxVectorLimit bounds vector_search's limit.
const MaxVectorLimit = 1000

// VectorSearch appends {"rows":[…, "distance": d], "row_count", "columns", "truncated"} to dst:
// every column but vectors, nearest first. Identifiers are checked against the catalog and
// quoted; the where clause must be one boolean expression and runs read-only.
func (r *Runner) VectorSearch(ctx context.Context, dst []byte, vs VectorSearch) ([]byte, error) {
	if err := requireVectorArgs(vs.Table, vs.EmbeddingColumn); err != nil {
		return dst, err
	}
	if vs.Limit == 0 {
		vs.Limit = 10
	}
	if vs.Limit < 1 || vs.Limit > MaxVectorLimit {
		return dst, inputErrorf("limit %d: use 1 to %d", vs.Limit, MaxVectorLimit)
	}
	if err := checkEmbedding("query_embedding", vs.QueryEmbedding); err != nil {
		return dst, err
	}
	if strings.TrimSpace(vs.WhereClause) != "" {
		if err := sqlguard.CheckWhereClause(vs.WhereClause); err != nil {
			return dst, inputErrorf("where_clause: %v", asInput(err))
		}
	}
	t, col, err := r.vectorColumn(ctx, vs.Schema, vs.Table, vs.EmbeddingColumn, len(vs.QueryEmbedding), "query_embedding")
	if err != nil {
		return dst, err
	}
	var cols []string
	for _, c := range t.Columns {
		if !isVectorType(c.TypeName) {
			cols = append(cols, quoteIdent(c.Name))
		}
	}
	rel := quoteIdent(t.Schema) + "." + quoteIdent(t.Table)
	dist := quoteIdent(col.Name) + " <=> $1::" + col.TypeName
	var b strings.Builder
	b.WriteString("SELECT ")
	for _, c := range cols {
		b.WriteString(c + ", ")
	}
	b.WriteString(dist + " AS distance FROM " + rel)
	if strings.TrimSpace(vs.WhereClause) != "" {
		// The newline keeps a trailing -- comment in the clause from swallowing the parenthesis.
		b.WriteString(" WHERE (" + vs.WhereClause + "\n)")
	}
	b.WriteString(" ORDER BY " + dist + " LIMIT " + strconv.Itoa(vs.Limit))

	// ef_search caps how many rows an HNSW scan returns; a filter is applied after the scan, so
	// iterative scans (pgvector 0.8+) keep scanning until the limit is met.
	setup := []string{fmt.Sprintf(efSearchSQL, max(40, vs.Limit))}
	if vs.WhereClause != "" && r.iterativeScan.Load() {
		setup = append(setup, iterativeScanSQL)
	}
	return r.read(ctx, dst, b.String(), true, []Param{vectorLiteral(vs.QueryEmbedding)}, setup)
}

// InsertVector is a row to insert with its embedding.
type InsertVector struct {
	Schema          string
	Table           string
	Columns         map[string]Param
	EmbeddingColumn string
	Embedding       []float64
}

// InsertVector inserts one row and appends {"table":…, "key":{pk columns…}, "rows_affected":1}.
func (r *Runner) InsertVector(ctx context.Context, dst []byte, iv InsertVector) ([]byte, error) {
	if r.ro {
		return dst, ErrReadOnly
	}
	if err := requireVectorArgs(iv.Table, iv.EmbeddingColumn); err != nil {
		return dst, err
	}
	if err := checkEmbedding("embedding", iv.Embedding); err != nil {
		return dst, err
	}
	t, col, err := r.vectorColumn(ctx, iv.Schema, iv.Table, iv.EmbeddingColumn, len(iv.Embedding), "embedding")
	if err != nil {
		return dst, err
	}
	names := make([]string, 0, len(iv.Columns))
	for k := range iv.Columns {
		names = append(names, k)
	}
	slices.Sort(names)
	var cols, ph []string
	var params []Param
	for _, name := range names {
		c := findColumn(t, name)
		if c == nil {
			return dst, inputErrorf("columns: %v", notFoundColumn(t, name))
		}
		if c.Name == col.Name {
			return dst, inputErrorf("columns: %q is the embedding column; pass the vector as embedding", name)
		}
		cols = append(cols, quoteIdent(c.Name))
		params = append(params, iv.Columns[name])
		ph = append(ph, "$"+strconv.Itoa(len(params)))
	}
	cols = append(cols, quoteIdent(col.Name))
	params = append(params, vectorLiteral(iv.Embedding))
	ph = append(ph, "$"+strconv.Itoa(len(params))+"::"+col.TypeName)
	returning := t.PrimaryKey
	if len(returning) == 0 {
		returning = []string{"ctid"}
	}
	q := "INSERT INTO " + quoteIdent(t.Schema) + "." + quoteIdent(t.Table) +
		" (" + strings.Join(cols, ", ") + ") VALUES (" + strings.Join(ph, ", ") + ") RETURNING " + joinQuoted(returning)

	conn, err := r.acquire(ctx)
	if err != nil {
		return dst, err
	}
	vals, err := r.bind(ctx, conn.Conn().PgConn(), q, params)
	if err != nil {
		conn.Release()
		return dst, err
	}
	var keep firstRow
	if _, err := r.write(ctx, conn, nil, &sqlguard.Statement{Text: q, Command: "INSERT"}, vals, &keep); err != nil {
		return dst, wrapPgError(err, "insert_vector", q, 0)
	}
	enc := r.enc.Load()
	dst = append(dst, `{"table":`...)
	dst = pgjson.AppendString(dst, t.Schema+"."+t.Table)
	dst = append(dst, `,"key":{`...)
	for i, n := range keep.names {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = pgjson.AppendString(dst, n)
		dst = append(dst, ':')
		oid := uint32(0)
		if c := findColumn(t, n); c != nil {
			oid = c.TypeOID
		}
		dst = enc.AppendValue(dst, oid, keep.vals[i])
	}
	return append(dst, `},"rows_affected":1}`...), nil
}

// vectorColumn resolves the table and checks that the column is a vector whose dimensions
// match the embedding's.
func (r *Runner) vectorColumn(ctx context.Context, schema, table, column string, dims int, what string) (*catalog.Table, *catalog.Column, error) {
	t, err := catalog.DescribeTable(ctx, r.pool, schema, table)
	if err != nil {
		return nil, nil, err
	}
	c := findColumn(t, column)
	if c == nil {
		return nil, nil, inputErrorf("embedding_column: %v", notFoundColumn(t, column))
	}
	if c.TypeName != "vector" && c.TypeName != "halfvec" {
		if !r.hasVector.Load() {
			return nil, nil, inputErrorf("the pgvector extension is not installed in this database: install pgvector on the server (apt-get install postgresql-<major>-pgvector) and run CREATE EXTENSION vector")
		}
		return nil, nil, inputErrorf("embedding_column %q of %s.%s is %s, not a vector column (vector or halfvec)", c.Name, t.Schema, t.Table, c.Type)
	}
	if c.Dimensions > 0 && c.Dimensions != dims {
		return nil, nil, inputErrorf("%s has %d dimensions but %s.%s.%s is %s: pass a %d-dimension embedding (from the model that filled the column)",
			what, dims, t.Schema, t.Table, c.Name, c.Type, c.Dimensions)
	}
	return t, c, nil
}

func requireVectorArgs(table, column string) error {
	if table == "" {
		return inputErrorf("table is required: the table holding the vectors (list_tables shows them)")
	}
	if column == "" {
		return inputErrorf("embedding_column is required: the vector column (describe_table shows it)")
	}
	return nil
}

func checkEmbedding(what string, v []float64) error {
	if len(v) == 0 {
		return inputErrorf("%s is empty: pass the embedding as an array of numbers", what)
	}
	for i, x := range v {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return inputErrorf("%s[%d] is not a finite number", what, i)
		}
	}
	return nil
}

func findColumn(t *catalog.Table, name string) *catalog.Column {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i]
		}
	}
	return nil
}

func notFoundColumn(t *catalog.Table, name string) error {
	names := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		names[i] = c.Name
	}
	return fmt.Errorf("column %q does not exist in %s.%s (columns: %s)", name, t.Schema, t.Table, strings.Join(names, ", "))
}

func isVectorType(name string) bool {
	return name == "vector" || name == "halfvec" || name == "sparsevec"
}

// vectorLiteral is pgvector's text form, [1,2,3]; bound as text and cast in the SQL.
func vectorLiteral(v []float64) refValue {
	b := make([]byte, 0, len(v)*10)
	b = append(b, '[')
	for i, x := range v {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, x, 'g', -1, 32)
	}
	return refValue(append(b, ']'))
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func joinQuoted(names []string) string {
	q := make([]string, len(names))
	for i, n := range names {
		q[i] = quoteIdent(n)
	}
	return strings.Join(q, ", ")
}
