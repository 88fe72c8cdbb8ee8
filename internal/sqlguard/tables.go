package sqlguard

import (
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Operation is what a statement does, in the permissions file's terms.
type Operation string

// Operations, weakest first.
const (
	// OpRead reads: SELECT, VALUES, TABLE, SHOW, EXPLAIN without ANALYZE.
	OpRead Operation = "read"
	// OpWrite changes rows: INSERT, UPDATE, DELETE, MERGE, TRUNCATE, LOCK, NOTIFY, SET
	// CONSTRAINTS, CALL, REFRESH MATERIALIZED VIEW, COPY … FROM.
	OpWrite Operation = "write"
	// OpDDL changes the schema or administers the database: CREATE/ALTER/DROP, SELECT … INTO,
	// COMMENT, GRANT/REVOKE, roles, ALTER SYSTEM, VACUUM, ANALYZE, CLUSTER, REINDEX, CHECKPOINT,
	// and DO, whose procedural body cairn cannot see into and which can therefore do anything.
	OpDDL Operation = "ddl"
)

func (o Operation) rank() int {
	switch o {
	case OpWrite:
		return 1
	case OpDDL:
		return 2
	}
	return 0
}

// Access is one relation a statement touches, and how.
type Access struct {
	// Table is the relation as the statement names it: Schema is "" when unqualified, to be
	// resolved against the search path by whoever knows the catalog. A view is its own name:
	// what it reads is not listed (its owner's privileges govern it in PostgreSQL too).
	Table TableRef
	// Op is OpRead for relations read, OpWrite for the targets of INSERT, UPDATE, DELETE, MERGE,
	// TRUNCATE, LOCK, REFRESH and COPY FROM, and OpDDL for relations a DDL statement creates,
	// alters, drops or otherwise names outside a query.
	Op Operation
	// Via says how the statement reaches the relation when it is not named directly at the top
	// level, innermost first, e.g. `a JOIN`, `a subquery in a CTE "s"`, `a UNION`,
	// `INSERT … SELECT`, `UPDATE … FROM`, `DELETE … USING`, `MERGE … USING`, `nextval()`.
	Via string
	// Cascade says what a write to the relation can set off in the tables whose foreign keys
	// reference it; only the catalog knows which tables those are.
	Cascade Cascade
	// SetColumns are the columns an UPDATE (or ON CONFLICT DO UPDATE, or MERGE's UPDATE) sets,
	// when Cascade has CascadeUpdate: only foreign keys referencing one of them are set off.
	SetColumns []string
}

// Cascade is what a write to a relation can do to the tables that reference it, as flags.
type Cascade uint8

const (
	// CascadeDelete: the referencing foreign keys' ON DELETE actions (CASCADE, SET NULL, SET
	// DEFAULT) write the tables that hold them — DELETE, MERGE … DELETE.
	CascadeDelete Cascade = 1 << iota
	// CascadeUpdate: their ON UPDATE actions, for the referenced columns set — UPDATE, MERGE …
	// UPDATE, INSERT … ON CONFLICT DO UPDATE.
	CascadeUpdate
	// CascadeTruncate: TRUNCATE … CASCADE empties every table that references the relation,
	// and every table that references those.
	CascadeTruncate
)

// FuncRef is one function a statement calls.
type FuncRef struct {
	// Schema is "" when the call does not qualify the name (resolve it against the search
	// path); calls written in SQL syntax, like EXTRACT(… FROM …) or SUBSTRING(… FROM …), are
	// "pg_catalog", as the parser makes them.
	Schema, Name string
	Via          string
	// Restricted says why a built-in function needs an explicit permission, completing "it …";
	// "" for the ordinary ones. Some read data the statement does not name as a relation: SQL
	// passed as text (query_to_xml, ts_stat), a relation or schema passed by name
	// (table_to_xml), large objects (lo_get), other sessions' statements
	// (pg_stat_get_activity) — checking the relations a statement names says nothing about
	// these. Others administer the server or reach other sessions (pg_terminate_backend,
	// pg_reload_conf, setval, large-object writes, notifications on cairn's own channels).
	// Permissions treat them like user-defined functions: a role must list them.
	Restricted string
}

// String is the function's name as schema.name, or the bare name when unqualified.
func (f FuncRef) String() string {
	if f.Schema == "" {
		return f.Name
	}
	return f.Schema + "." + f.Name
}

// Footprint is what a statement needs permission for.
type Footprint struct {
	// Op is the strongest operation the statement performs: the command's own (an INSERT
	// writes, a CREATE is DDL), raised by what it holds (a data-modifying WITH query writes,
	// SELECT … INTO is DDL). EXPLAIN without ANALYZE only plans, so it reads whatever it explains;
	// EXPLAIN ANALYZE runs the statement and needs what it needs.
	Op Operation
	// Accesses lists each relation once per operation, in order of appearance. References to
	// CTEs are not relations. Relations DDL names through name lists rather than relation
	// references (COMMENT ON, SECURITY LABEL, GRANT … ON ALL TABLES IN SCHEMA) are not listed:
	// they need the ddl operation whatever they name.
	Accesses []Access
	// Functions lists each function called, once, in order of appearance. A function's body,
	// and what views, triggers, defaults, operators and casts call, are not visible.
	Functions []FuncRef
}

// readsUnnamed is why the dynamicFuncs need an explicit permission.
const readsUnnamed = "reads data named in its arguments (SQL text, a table or schema name, a large object) or other sessions' statements, which permissions cannot see"

// dynamicFuncs are the built-in functions whose calls read data that is not named as a relation.
var dynamicFuncs = map[string]bool{
	"query_to_xml": true, "query_to_xmlschema": true, "query_to_xml_and_xmlschema": true,
	"cursor_to_xml": true, "cursor_to_xmlschema": true,
	"table_to_xml": true, "table_to_xmlschema": true, "table_to_xml_and_xmlschema": true,
	"schema_to_xml": true, "schema_to_xmlschema": true, "schema_to_xml_and_xmlschema": true,
	"database_to_xml": true, "database_to_xmlschema": true, "database_to_xml_and_xmlschema": true,
	"ts_stat": true,
	"lo_get":  true, "loread": true, "lo_export": true, "lo_import": true,
	"pg_read_file": true, "pg_read_binary_file": true,
	"pg_stat_get_activity": true, "pg_stat_get_backend_activity": true,
}

// footprintOf works out the footprint of one statement.
func footprintOf(stmt proto.Message) Footprint {
	if ex, ok := stmt.(*pg_query.ExplainStmt); ok {
		inner := footprintOf(nodeMessage(ex.Query))
		if explainAnalyzes(ex.Options) {
			return inner
		}
		// Only planned: every relation is read (for its statistics), nothing is changed.
		fp := Footprint{Op: OpRead, Functions: inner.Functions}
		for _, a := range inner.Accesses {
			a.Op, a.Cascade, a.SetColumns = OpRead, 0, nil
			if !slices.ContainsFunc(fp.Accesses, func(b Access) bool { return b.Table == a.Table && b.Op == a.Op }) {
				fp.Accesses = append(fp.Accesses, a)
			}
		}
		return fp
	}
	w := &fpWalk{top: stmt, fp: Footprint{Op: commandOp(stmt)}}
	// Outside a query, the relations a DDL statement names are what it creates, alters or drops.
	_, isSelect := stmt.(*pg_query.SelectStmt)
	w.walk(stmt.ProtoReflect(), fpScope{ddl: w.fp.Op == OpDDL && !isSelect})
	return w.fp
}

// commandOp is the operation of a statement's command alone.
func commandOp(stmt proto.Message) Operation {
	switch n := stmt.(type) {
	case *pg_query.SelectStmt:
		if n.IntoClause != nil {
			return OpDDL
		}
		return OpRead
	case *pg_query.InsertStmt, *pg_query.UpdateStmt, *pg_query.DeleteStmt, *pg_query.MergeStmt,
		*pg_query.TruncateStmt, *pg_query.LockStmt, *pg_query.NotifyStmt, *pg_query.ConstraintsSetStmt,
		*pg_query.CallStmt, *pg_query.RefreshMatViewStmt:
		return OpWrite
	case *pg_query.CopyStmt:
		if n.IsFrom {
			return OpWrite
		}
		return OpRead
	}
	switch classify(stmt).kind {
	case kindRead, kindTx, kindSession:
		// Transaction control and session state are refused by every tool before permissions
		// are asked; they read nothing either.
		return OpRead
	}
	return OpDDL
}

// fpWalk collects a footprint.
type fpWalk struct {
	top proto.Message
	fp  Footprint
}

// fpScope is what the walk knows at a node.
type fpScope struct {
	ctes []string // CTE names visible here
	via  []string // how the node is reached, outermost first
	ddl  bool     // a relation named here is a DDL target, not a read
}

// through returns the scope one step further in: via gains how.
func (sc fpScope) through(how string) fpScope {
	if how == "" || (len(sc.via) > 0 && sc.via[len(sc.via)-1] == how) {
		return sc
	}
	sc.via = append(slices.Clip(sc.via), how)
	return sc
}

// query returns the scope inside a query, where relations are read.
func (sc fpScope) query() fpScope {
	sc.ddl = false
	return sc
}

func (sc fpScope) viaString() string {
	if len(sc.via) == 0 {
		return ""
	}
	parts := slices.Clone(sc.via)
	slices.Reverse(parts)
	return strings.Join(parts, " in ")
}

func (w *fpWalk) raise(op Operation) {
	if op.rank() > w.fp.Op.rank() {
		w.fp.Op = op
	}
}

func (w *fpWalk) addRange(rv *pg_query.RangeVar, op Operation, sc fpScope) *Access {
	if rv == nil || rv.Relname == "" {
		return nil
	}
	return w.addAccess(TableRef{Schema: rv.Schemaname, Name: rv.Relname}, op, sc)
}

func (w *fpWalk) addAccess(t TableRef, op Operation, sc fpScope) *Access {
	if t.Name == "" {
		return nil
	}
	for i, a := range w.fp.Accesses {
		if a.Table == t && a.Op == op {
			return &w.fp.Accesses[i]
		}
	}
	w.fp.Accesses = append(w.fp.Accesses, Access{Table: t, Op: op, Via: sc.viaString()})
	return &w.fp.Accesses[len(w.fp.Accesses)-1]
}

// cascades marks a written relation as setting off the foreign keys that reference it; set
// are the columns an update sets.
func cascades(a *Access, c Cascade, set []*pg_query.Node) {
	if a == nil {
		return
	}
	a.Cascade |= c
	for _, n := range set {
		if rt := n.GetResTarget(); rt != nil && !slices.Contains(a.SetColumns, rt.Name) {
			a.SetColumns = append(a.SetColumns, rt.Name)
		}
	}
}

func (w *fpWalk) addFunc(fc *pg_query.FuncCall, sc fpScope) {
	parts := make([]string, 0, len(fc.Funcname))
	for _, p := range fc.Funcname {
		parts = append(parts, p.GetString_().GetSval())
	}
	if len(parts) == 0 {
		return
	}
	f := FuncRef{Name: parts[len(parts)-1], Via: sc.viaString()}
	if len(parts) > 1 {
		f.Schema = parts[len(parts)-2]
	}
	if f.Schema == "" || f.Schema == "pg_catalog" {
		f.Restricted = w.builtinCall(strings.ToLower(f.Name), fc.Args, sc)
	}
	w.addFuncRef(f)
}

// builtinCall works out what a call of a built-in function needs beyond the statement's
// relations: the reason it is restricted ("" if it is not), and — for nextval on a sequence
// named by a literal — the sequence as a relation written.
func (w *fpWalk) builtinCall(name string, args []*pg_query.Node, sc fpScope) string {
	switch {
	case dynamicFuncs[name]:
		return readsUnnamed
	case name == "nextval":
		if seq, ok := qualifiedLiteral(args); ok {
			w.addAccess(seq, OpWrite, sc.through("nextval()"))
			return ""
		}
		return "changes a sequence named at run time"
	case name == "pg_notify":
		return notifyRestriction(stringArg(args))
	}
	if r := funcRuleFor(name); r != nil && r.admin {
		return r.does
	}
	return ""
}

func (w *fpWalk) addFuncRef(f FuncRef) {
	for _, g := range w.fp.Functions {
		if g.Schema == f.Schema && g.Name == f.Name {
			return
		}
	}
	w.fp.Functions = append(w.fp.Functions, f)
}

// walk visits m and everything below it.
func (w *fpWalk) walk(m protoreflect.Message, sc fpScope) {
	switch n := m.Interface().(type) {
	case *pg_query.Node:
		if fd := m.WhichOneof(tree().nodeOneof); fd != nil {
			w.walk(m.Get(fd).Message(), sc)
		}
		return
	case *pg_query.RangeVar:
		if n.Schemaname == "" && slices.Contains(sc.ctes, n.Relname) {
			return // a CTE, not a relation
		}
		op := OpRead
		if sc.ddl {
			op = OpDDL
		}
		w.addRange(n, op, sc)
		return
	case *pg_query.FuncCall:
		w.addFunc(n, sc)
	case *pg_query.SelectStmt:
		w.selectStmt(n, sc)
		return
	case *pg_query.InsertStmt:
		w.dml(n, n.Relation, n.WithClause, sc, func(name protoreflect.Name) string {
			if name == "select_stmt" && n.SelectStmt.GetSelectStmt().GetValuesLists() == nil {
				return "INSERT … SELECT"
			}
			return ""
		})
		return
	case *pg_query.UpdateStmt:
		w.dml(n, n.Relation, n.WithClause, sc, func(name protoreflect.Name) string {
			if name == "from_clause" {
				return "UPDATE … FROM"
			}
			return ""
		})
		return
	case *pg_query.DeleteStmt:
		w.dml(n, n.Relation, n.WithClause, sc, func(name protoreflect.Name) string {
			if name == "using_clause" {
				return "DELETE … USING"
			}
			return ""
		})
		return
	case *pg_query.MergeStmt:
		w.dml(n, n.Relation, n.WithClause, sc, func(name protoreflect.Name) string {
			if name == "source_relation" {
				return "MERGE … USING"
			}
			return ""
		})
		return
	case *pg_query.JoinExpr:
		sc = sc.through("a JOIN")
	case *pg_query.RangeSubselect, *pg_query.SubLink:
		sc = sc.through("a subquery")
	case *pg_query.TruncateStmt:
		for _, r := range n.Relations {
			if a := w.addRange(r.GetRangeVar(), OpWrite, sc); n.Behavior == pg_query.DropBehavior_DROP_CASCADE {
				cascades(a, CascadeTruncate, nil)
			}
		}
		return
	case *pg_query.NotifyStmt:
		if why := notifyRestriction(n.Conditionname, true); why != "" {
			w.addFuncRef(FuncRef{Schema: "pg_catalog", Name: "pg_notify", Via: sc.through("NOTIFY " + n.Conditionname).viaString(), Restricted: why})
		}
		return
	case *pg_query.LockStmt:
		for _, r := range n.Relations {
			w.addRange(r.GetRangeVar(), OpWrite, sc)
		}
		return
	case *pg_query.RefreshMatViewStmt:
		w.addRange(n.Relation, OpWrite, sc)
		return
	case *pg_query.CopyStmt:
		op := OpRead
		if n.IsFrom {
			op = OpWrite
		}
		w.addRange(n.Relation, op, sc)
		if n.Query != nil {
			w.walk(n.Query.ProtoReflect(), sc.query())
		}
		return
	case *pg_query.DropStmt:
		w.dropped(n, sc)
		return
	}
	w.children(m, sc, nil)
}

// children walks m's fields; scopeOf, when set, gives a field's scope or false to skip it.
func (w *fpWalk) children(m protoreflect.Message, sc fpScope, scopeOf func(protoreflect.Name) (fpScope, bool)) {
	fields, ok := tree().fields[m.Descriptor().FullName()]
	if !ok {
		fields = fieldsHoldingMessages(m.Descriptor())
	}
	for _, fd := range fields {
		if !m.Has(fd) {
			continue
		}
		fsc := sc
		if scopeOf != nil {
			var walk bool
			if fsc, walk = scopeOf(fd.Name()); !walk {
				continue
			}
		}
		if fd.IsList() {
			l := m.Get(fd).List()
			for i := range l.Len() {
				w.walk(l.Get(i).Message(), fsc)
			}
			continue
		}
		w.walk(m.Get(fd).Message(), fsc)
	}
}

func (w *fpWalk) selectStmt(n *pg_query.SelectStmt, sc fpScope) {
	sc = sc.query()
	if n.WithClause != nil {
		sc.ctes = w.with(n.WithClause, sc)
	}
	if n.IntoClause != nil {
		w.raise(OpDDL)
		w.addRange(n.IntoClause.Rel, OpDDL, sc)
	}
	setop := ""
	switch n.Op {
	case pg_query.SetOperation_SETOP_UNION:
		setop = "a UNION"
	case pg_query.SetOperation_SETOP_INTERSECT:
		setop = "an INTERSECT"
	case pg_query.SetOperation_SETOP_EXCEPT:
		setop = "an EXCEPT"
	}
	// FROM a, b is a join written with a comma.
	from := ""
	if len(n.FromClause) > 1 {
		from = "a JOIN"
	}
	w.children(n.ProtoReflect(), sc, func(name protoreflect.Name) (fpScope, bool) {
		switch name {
		case "with_clause", "into_clause":
			return sc, false
		case "larg", "rarg":
			return sc.through(setop), true
		case "from_clause":
			return sc.through(from), true
		}
		return sc, true
	})
}

// dml walks INSERT, UPDATE, DELETE and MERGE: the target is written (even when a CTE of the
// same name is in scope, as in PostgreSQL), the rest is read; via names how a field is reached.
func (w *fpWalk) dml(n proto.Message, target *pg_query.RangeVar, with *pg_query.WithClause, sc fpScope, via func(protoreflect.Name) string) {
	w.raise(OpWrite)
	sc = sc.query()
	if with != nil {
		sc.ctes = w.with(with, sc)
	}
	a := w.addRange(target, OpWrite, sc)
	switch n := n.(type) {
	case *pg_query.InsertStmt:
		if oc := n.OnConflictClause; oc != nil && oc.Action == pg_query.OnConflictAction_ONCONFLICT_UPDATE {
			cascades(a, CascadeUpdate, oc.TargetList)
		}
	case *pg_query.UpdateStmt:
		cascades(a, CascadeUpdate, n.TargetList)
	case *pg_query.DeleteStmt:
		cascades(a, CascadeDelete, nil)
	case *pg_query.MergeStmt:
		for _, wc := range n.MergeWhenClauses {
			switch c := wc.GetMergeWhenClause(); c.GetCommandType() {
			case pg_query.CmdType_CMD_DELETE:
				cascades(a, CascadeDelete, nil)
			case pg_query.CmdType_CMD_UPDATE:
				cascades(a, CascadeUpdate, c.TargetList)
			}
		}
	}
	w.children(n.ProtoReflect(), sc, func(name protoreflect.Name) (fpScope, bool) {
		switch name {
		case "relation", "with_clause":
			return sc, false
		}
		return sc.through(via(name)), true
	})
}

// with walks the CTEs of a WITH clause, each seeing the names PostgreSQL lets it see, and
// returns the names visible to the statement the clause belongs to (as walkWith does).
func (w *fpWalk) with(wc *pg_query.WithClause, sc fpScope) []string {
	names := slices.Clip(sc.ctes)
	for _, n := range wc.Ctes {
		if cte := n.GetCommonTableExpr(); cte != nil {
			names = append(names, cte.Ctename)
		}
	}
	visible := len(sc.ctes)
	for _, n := range wc.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		inner := sc.through(`a CTE "` + cte.Ctename + `"`)
		inner.ctes = slices.Clip(names[:visible])
		if wc.Recursive {
			inner.ctes = slices.Clip(names)
		}
		w.children(cte.ProtoReflect(), inner, nil)
		visible++
	}
	return slices.Clip(names)
}

// dropped records the relations a DROP names.
func (w *fpWalk) dropped(d *pg_query.DropStmt, sc fpScope) {
	for _, r := range droppedRelations(d) {
		w.addAccess(TableRef{Schema: r[0], Name: r[1]}, OpDDL, sc)
	}
}
