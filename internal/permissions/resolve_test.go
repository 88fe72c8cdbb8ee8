package permissions_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cairn-mcp/cairn/internal/permissions"
	"github.com/cairn-mcp/cairn/internal/sqlguard"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// The Resolver qualifies what a statement reaches: an unqualified name in every schema of the
// search path that has it, a name found nowhere where it would be created, and the tables a
// DELETE reaches through ON DELETE CASCADE.
func TestResolverQualifiesWhatAStatementReaches(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Pool.Exec(ctx, `CREATE SCHEMA other;
		CREATE TABLE public.parent (id int PRIMARY KEY);
		CREATE TABLE public.child (parent_id int REFERENCES public.parent ON DELETE CASCADE);
		CREATE TABLE other.parent (id int);`); err != nil {
		t.Fatal(err)
	}
	r := permissions.NewResolver(db.Pool)
	for _, c := range []struct {
		sql  string
		want []string // schema.name:op
	}{
		{"SELECT * FROM parent", []string{"public.parent:read"}},
		{"SELECT * FROM nowhere", []string{"public.nowhere:read"}},
		{"DELETE FROM public.parent", []string{"public.parent:write", "public.child:write"}},
	} {
		st, err := sqlguard.Parse(c.sql)
		if err != nil {
			t.Fatal(err)
		}
		got, err := r.Statement(ctx, st.Footprint)
		if err != nil {
			t.Fatalf("%s: %v", c.sql, err)
		}
		var names []string
		for _, tb := range got.Tables {
			names = append(names, tb.Schema+"."+tb.Name+":"+string(tb.Op))
		}
		if !slices.Equal(names, c.want) {
			t.Errorf("%s: %v, want %v", c.sql, names, c.want)
		}
	}
	// A name in a schema off the search path is not found there.
	tables, err := r.Named(ctx, "", "parent", permissions.Read)
	if err != nil || len(tables) != 1 || tables[0].Schema != "public" {
		t.Errorf("Named(parent) = %v, %v", tables, err)
	}
}
