package permissions

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// Resolver qualifies the names a statement or a tool reaches against the database's catalog,
// for a Set to check: an unqualified name can mean a relation in any schema of the search path.
type Resolver struct {
	pool     *pgxpool.Pool
	domainMu sync.Mutex
	domain   map[string][]string // unqualified domain table → its schemas, resolved once
}

// NewResolver returns a Resolver that asks the catalog through pool.
func NewResolver(pool *pgxpool.Pool) *Resolver {
	return &Resolver{pool: pool, domain: map[string][]string{}}
}

// Domain resolves one of cairn's own tables to its schemas, once: migrations put them in one
// place.
func (r *Resolver) Domain(ctx context.Context, name string) ([]string, error) {
	r.domainMu.Lock()
	schemas, ok := r.domain[name]
	r.domainMu.Unlock()
	if ok {
		return schemas, nil
	}
	l, err := r.lookupNames(ctx, []string{name}, nil)
	if err != nil {
		return nil, err
	}
	schemas = l.rels[name]
	r.domainMu.Lock()
	r.domain[name] = schemas
	r.domainMu.Unlock()
	return schemas, nil
}

// Named resolves a relation a tool names; schema "" is resolved against the search path.
func (r *Resolver) Named(ctx context.Context, schema, table string, op Operation) ([]Table, error) {
	if schema != "" {
		return []Table{{Schema: schema, Name: table, Op: op}}, nil
	}
	l, err := r.lookupNames(ctx, []string{table}, nil)
	if err != nil {
		return nil, err
	}
	var out []Table
	for _, sc := range l.rels[table] {
		out = append(out, Table{Schema: sc, Name: table, Op: op})
	}
	return out, nil
}

// Statement turns a statement's footprint into what permissions check, every name qualified.
//
// An unqualified relation counts as being in every schema of the search path that has a
// relation of that name, not only the first (which PostgreSQL would use): a name that could be
// in a forbidden schema counts as such, which also covers a relation created in an earlier
// schema between this check and the statement. A name found nowhere counts as being in the
// schema it would be created in (current_schema()). An unqualified function is built in only
// when pg_catalog is the only schema of the path with a function of that name; otherwise it
// counts as each user-defined one of that name.
func (r *Resolver) Statement(ctx context.Context, fp sqlguard.Footprint) (*Statement, error) {
	st := &Statement{Op: Operation(fp.Op)}
	var rels, funcs []string
	for _, acc := range fp.Accesses {
		if acc.Table.Schema == "" && !slices.Contains(rels, acc.Table.Name) {
			rels = append(rels, acc.Table.Name)
		}
	}
	for _, f := range fp.Functions {
		if f.Schema == "" && !slices.Contains(funcs, f.Name) {
			funcs = append(funcs, f.Name)
		}
	}
	var roots []cascadeRoot
	var l lookup
	if len(rels) > 0 || len(funcs) > 0 {
		var err error
		if l, err = r.lookupNames(ctx, rels, funcs); err != nil {
			return nil, err
		}
	}
	for _, acc := range fp.Accesses {
		schemas := []string{acc.Table.Schema}
		if acc.Table.Schema == "" {
			schemas = l.rels[acc.Table.Name]
		}
		for _, sc := range schemas {
			st.Tables = append(st.Tables, Table{Schema: sc, Name: acc.Table.Name, Op: Operation(acc.Op), Via: acc.Via})
			if acc.Cascade != 0 {
				roots = append(roots, cascadeRoot{sc, acc.Table.Name, acc.Cascade, acc.SetColumns})
			}
		}
	}
	if len(roots) > 0 {
		reached, err := r.cascadeTargets(ctx, roots)
		if err != nil {
			return nil, err
		}
		st.Tables = append(st.Tables, reached...)
	}
	for _, f := range fp.Functions {
		if f.Schema != "" {
			st.Functions = append(st.Functions, Function{Schema: f.Schema, Name: f.Name, Via: f.Via,
				Builtin: f.Schema == "pg_catalog", Restricted: f.Restricted})
			continue
		}
		schemas := l.funcs[f.Name]
		user := slices.DeleteFunc(slices.Clone(schemas), func(s string) bool { return s == "pg_catalog" })
		if len(user) == 0 && len(schemas) > 0 {
			st.Functions = append(st.Functions, Function{Schema: "pg_catalog", Name: f.Name, Via: f.Via, Builtin: true, Restricted: f.Restricted})
			continue
		}
		if len(schemas) == 0 {
			user = []string{l.current} // no such function yet: where it would be created
		}
		for _, sc := range user {
			st.Functions = append(st.Functions, Function{Schema: sc, Name: f.Name, Via: f.Via})
		}
	}
	return st, nil
}

// cascadeRoot is a relation a statement writes in a way that can set off the foreign keys that
// reference it.
type cascadeRoot struct {
	schema, name string
	cascade      sqlguard.Cascade
	setColumns   []string
}

// cascadeTargets asks the catalog which tables a statement also writes through foreign keys,
// in one round trip: for TRUNCATE … CASCADE every table that references a root; for a DELETE
// the tables whose foreign keys have an ON DELETE action that writes (CASCADE, SET NULL, SET
// DEFAULT); for an UPDATE those with such an ON UPDATE action on a column the statement sets;
// and then the tables those reach in turn (by any action, as what a cascade changes there is
// not known here).
func (r *Resolver) cascadeTargets(ctx context.Context, roots []cascadeRoot) ([]Table, error) {
	type root struct {
		Schema string   `json:"schema"`
		Name   string   `json:"name"`
		Del    bool     `json:"del"`
		Upd    bool     `json:"upd"`
		Trunc  bool     `json:"trunc"`
		Cols   []string `json:"cols"` // nil: any column (an update whose columns are unknown)
	}
	rs := make([]root, len(roots))
	for i, c := range roots {
		rs[i] = root{Schema: c.schema, Name: c.name, Del: c.cascade&sqlguard.CascadeDelete != 0,
			Upd: c.cascade&sqlguard.CascadeUpdate != 0, Trunc: c.cascade&sqlguard.CascadeTruncate != 0, Cols: c.setColumns}
	}
	rows, err := r.pool.Query(ctx, cascadeTargetsSQL, rs)
	if err != nil {
		return nil, fmt.Errorf("permissions: find the tables foreign keys reach: %w", err)
	}
	defer rows.Close()
	var out []Table
	for rows.Next() {
		var schema, name, root string
		var trunc bool
		if err := rows.Scan(&schema, &name, &trunc, &root); err != nil {
			return nil, fmt.Errorf("permissions: find the tables foreign keys reach: %w", err)
		}
		via := "the ON DELETE / ON UPDATE actions of foreign keys referencing " + root
		if trunc {
			via = "TRUNCATE … CASCADE of " + root
		}
		out = append(out, Table{Schema: schema, Name: name, Op: Write, Via: via})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("permissions: find the tables foreign keys reach: %w", err)
	}
	return out, nil
}

// lookup is what the catalog says about unqualified names.
type lookup struct {
	rels    map[string][]string // relation → the schemas of the search path holding one of that name
	funcs   map[string][]string // function → likewise
	current string              // current_schema(), where a new relation would go
}

// lookupNames asks the catalog where unqualified names resolve, in one round trip. The search
// path is the connections' own (cairn never changes it: SET and set_config are refused, and
// every call ends with DISCARD ALL).
func (r *Resolver) lookupNames(ctx context.Context, rels, funcs []string) (lookup, error) {
	out := lookup{rels: map[string][]string{}, funcs: map[string][]string{}}
	rows, err := r.pool.Query(ctx, lookupNamesSQL, rels, funcs)
	if err != nil {
		return out, fmt.Errorf("permissions: resolve names against the search path: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var k, name, current string
		var schemas []string
		if err := rows.Scan(&k, &name, &schemas, &current); err != nil {
			return out, fmt.Errorf("permissions: resolve names: %w", err)
		}
		out.current = current
		if k == "r" {
			out.rels[name] = schemas
		} else {
			out.funcs[name] = schemas
		}
	}
	if err := rows.Err(); err != nil {
		return out, fmt.Errorf("permissions: resolve names: %w", err)
	}
	for _, n := range rels {
		if len(out.rels[n]) == 0 {
			out.rels[n] = []string{out.current} // not there yet: where it would be created
		}
	}
	return out, nil
}
