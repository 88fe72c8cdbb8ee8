package sqlguard

import (
	"slices"
	"strings"
	"sync"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// parseTree is what a walk needs to know of the parse tree's message types.
type parseTree struct {
	// nodeOneof is the oneof that holds a Node's content.
	nodeOneof protoreflect.OneofDescriptor
	// withClause names the WITH clause's message type.
	withClause protoreflect.FullName
	// fields lists, for each message type, its fields that hold messages: the only ones a walk
	// descends into. Ranging over every field of every node, scalars included, made the walk
	// twice as slow.
	fields map[protoreflect.FullName][]protoreflect.FieldDescriptor
}

// tree is built at the first walk, not at start: describing the parse tree's few hundred message
// types takes milliseconds that every cairn command would pay, `cairn serve` before it answers
// its client.
var tree = sync.OnceValue(func() *parseTree {
	t := &parseTree{
		nodeOneof:  (&pg_query.Node{}).ProtoReflect().Descriptor().Oneofs().Get(0),
		withClause: (&pg_query.WithClause{}).ProtoReflect().Descriptor().FullName(),
		fields:     map[protoreflect.FullName][]protoreflect.FieldDescriptor{},
	}
	msgs := pg_query.File_pg_query_proto.Messages()
	for i := range msgs.Len() {
		md := msgs.Get(i)
		t.fields[md.FullName()] = fieldsHoldingMessages(md)
	}
	return t
})

// Warm builds now what the first statement check would otherwise build, so that the first call
// does not wait for it; a server calls it while it starts.
func Warm() { tree() }

func fieldsHoldingMessages(md protoreflect.MessageDescriptor) []protoreflect.FieldDescriptor {
	var out []protoreflect.FieldDescriptor
	fields := md.Fields()
	for i := range fields.Len() {
		if fd := fields.Get(i); fd.Kind() == protoreflect.MessageKind {
			out = append(out, fd)
		}
	}
	return out
}

// facts is what a walk over one statement's tree found.
type facts struct {
	top proto.Message // the statement walked; a DML node other than this one is nested

	tables    []TableRef
	functions []string

	nestedWrite string // command of the first INSERT/UPDATE/DELETE/MERGE below the top, e.g. in a CTE
	locking     string // first row-locking clause anywhere, e.g. "FOR UPDATE"
	into        bool   // some SELECT has an INTO clause
}

// walkStatement collects facts about stmt and everything below it.
//
// The walk is generic over the protobuf messages rather than a switch over node types, so that
// a relation or function call in a node type nobody thought of is still found; only the node
// types that carry something of interest are named.
func walkStatement(stmt proto.Message) *facts {
	f := &facts{top: stmt}
	f.walk(stmt.ProtoReflect(), nil)
	return f
}

// walk visits m and its descendants. ctes holds the CTE names visible at m, so that a FROM item
// naming one is not reported as a table.
func (f *facts) walk(m protoreflect.Message, ctes []string) {
	var with *pg_query.WithClause
	switch n := m.Interface().(type) {
	case *pg_query.Node:
		// Half of every tree is these wrappers: asking which oneof field is set beats
		// checking each of their ~270 fields.
		if fd := m.WhichOneof(tree().nodeOneof); fd != nil {
			f.walk(m.Get(fd).Message(), ctes)
		}
		return
	case *pg_query.RangeVar:
		if n.Schemaname != "" || !slices.Contains(ctes, n.Relname) {
			f.addTable(n.Schemaname, n.Relname)
		}
		return // only an alias below
	case *pg_query.FuncCall:
		f.addFunction(n)
	case *pg_query.LockingClause:
		if f.locking == "" {
			f.locking = lockingName(n.Strength)
		}
	case *pg_query.SelectStmt:
		f.into = f.into || n.IntoClause != nil
		with = n.WithClause
	case *pg_query.InsertStmt:
		f.addWrite(n, "INSERT", n.Relation)
		with = n.WithClause
	case *pg_query.UpdateStmt:
		f.addWrite(n, "UPDATE", n.Relation)
		with = n.WithClause
	case *pg_query.DeleteStmt:
		f.addWrite(n, "DELETE", n.Relation)
		with = n.WithClause
	case *pg_query.MergeStmt:
		f.addWrite(n, "MERGE", n.Relation)
		with = n.WithClause
	case *pg_query.DropStmt:
		f.addDropped(n)
	}
	if with != nil {
		ctes = f.walkWith(with, ctes)
	}
	fields, ok := tree().fields[m.Descriptor().FullName()]
	if !ok { // not in pg_query.proto; never seen, but a missed subtree could hide a write
		fields = fieldsHoldingMessages(m.Descriptor())
	}
	for _, fd := range fields {
		if !m.Has(fd) {
			continue
		}
		if fd.IsList() {
			l := m.Get(fd).List()
			for i := range l.Len() {
				f.walk(l.Get(i).Message(), ctes)
			}
			continue
		}
		if with != nil && fd.Message().FullName() == tree().withClause {
			continue
		}
		f.walk(m.Get(fd).Message(), ctes)
	}
}

// walkWith walks the CTEs of a WITH clause, each seeing the names PostgreSQL lets it see, and
// returns the names visible to the statement the clause belongs to.
func (f *facts) walkWith(w *pg_query.WithClause, outer []string) []string {
	names := slices.Clip(outer)
	for _, n := range w.Ctes {
		if cte := n.GetCommonTableExpr(); cte != nil {
			names = append(names, cte.Ctename)
		}
	}
	visible := len(outer)
	for _, n := range w.Ctes {
		cte := n.GetCommonTableExpr()
		if cte == nil {
			continue
		}
		// A non-recursive CTE sees only the CTEs before it; the same name inside it is a table.
		scope := names[:visible]
		if w.Recursive {
			scope = names
		}
		f.walk(cte.ProtoReflect(), slices.Clip(scope))
		visible++
	}
	return slices.Clip(names)
}

func (f *facts) addTable(schema, name string) {
	if name == "" {
		return
	}
	t := TableRef{Schema: schema, Name: name}
	if !slices.Contains(f.tables, t) {
		f.tables = append(f.tables, t)
	}
}

func (f *facts) addWrite(n proto.Message, command string, target *pg_query.RangeVar) {
	if n != f.top && f.nestedWrite == "" {
		f.nestedWrite = command
	}
	// The target of a write is always a table, even when a CTE of the same name is in scope.
	if target != nil {
		f.addTable(target.Schemaname, target.Relname)
	}
}

func (f *facts) addFunction(fc *pg_query.FuncCall) {
	parts := make([]string, 0, len(fc.Funcname))
	for _, p := range fc.Funcname {
		parts = append(parts, strings.ToLower(p.GetString_().GetSval()))
	}
	// The parser itself qualifies SQL-syntax calls such as EXTRACT(... FROM ...) with pg_catalog;
	// report them as written.
	if fc.Funcformat == pg_query.CoercionForm_COERCE_SQL_SYNTAX && len(parts) == 2 && parts[0] == "pg_catalog" {
		parts = parts[1:]
	}
	name := strings.Join(parts, ".")
	if name != "" && !slices.Contains(f.functions, name) {
		f.functions = append(f.functions, name)
	}
}

// addDropped records the relations a DROP names.
func (f *facts) addDropped(d *pg_query.DropStmt) {
	for _, r := range droppedRelations(d) {
		f.addTable(r[0], r[1])
	}
}

// droppedRelations returns the (schema, name) of each relation a DROP names: they come as name
// lists, not RangeVars. Schema is "" when unqualified; a DROP of anything else gives none.
func droppedRelations(d *pg_query.DropStmt) [][2]string {
	switch d.RemoveType {
	case pg_query.ObjectType_OBJECT_TABLE, pg_query.ObjectType_OBJECT_VIEW,
		pg_query.ObjectType_OBJECT_MATVIEW, pg_query.ObjectType_OBJECT_INDEX,
		pg_query.ObjectType_OBJECT_SEQUENCE, pg_query.ObjectType_OBJECT_FOREIGN_TABLE:
	default:
		return nil
	}
	var out [][2]string
	for _, o := range d.Objects {
		items := o.GetList().GetItems()
		switch len(items) {
		case 0:
		case 1:
			out = append(out, [2]string{"", items[0].GetString_().GetSval()})
		default:
			out = append(out, [2]string{items[len(items)-2].GetString_().GetSval(), items[len(items)-1].GetString_().GetSval()})
		}
	}
	return out
}

func lockingName(s pg_query.LockClauseStrength) string {
	switch s {
	case pg_query.LockClauseStrength_LCS_FORKEYSHARE:
		return "FOR KEY SHARE"
	case pg_query.LockClauseStrength_LCS_FORSHARE:
		return "FOR SHARE"
	case pg_query.LockClauseStrength_LCS_FORNOKEYUPDATE:
		return "FOR NO KEY UPDATE"
	default:
		return "FOR UPDATE"
	}
}
