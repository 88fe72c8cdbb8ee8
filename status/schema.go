package status

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/migrations"
)

// schema compares the database's migrations, cairn's and River's, with this binary's.
func (c *collector) schema(ctx context.Context) error {
	rep, d := c.rep, &c.rep.Database
	v, err := migrations.Version(ctx, c.pool)
	if err != nil {
		return err
	}
	d.SchemaVersion = v
	// Versions rather than just the newest: a migration deferred for a missing extension leaves a
	// gap below the newest applied one.
	applied := map[int]bool{}
	if v > 0 {
		rows, _ := c.pool.Query(ctx, appliedMigrationsSQL)
		vs, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return fmt.Errorf("read applied migrations: %w", err)
		}
		for _, n := range vs {
			applied[n] = true
		}
	}
	ms, err := migrations.Migrations()
	if err != nil {
		return err
	}
	var waiting []string
	for _, m := range ms {
		if applied[m.Version] {
			continue
		}
		d.SchemaPending = append(d.SchemaPending, m.Version)
		// Migrating installs pgvector when the server has it; only its absence holds one back.
		if m.Requires != "" && (m.Requires != "vector" || d.PgvectorAvailable == "") {
			waiting = append(waiting, fmt.Sprintf("%04d_%s needs the %s extension on the server", m.Version, m.Name, m.Requires))
		}
	}
	switch {
	case v > d.SchemaLatest:
		rep.problem("schema_ahead", false, "the database schema is at migration %d but this cairn knows only up to %d: upgrade cairn", v, d.SchemaLatest)
	case len(d.SchemaPending) > 0:
		msg := fmt.Sprintf("the database schema is behind this cairn (at %d of %d; pending %v): run `cairn migrate`", v, d.SchemaLatest, d.SchemaPending)
		if len(waiting) > 0 {
			msg += " (" + strings.Join(waiting, "; ") + ")"
		}
		rep.problem("schema_behind", false, "%s", msg)
	}
	pending, err := jobs.Pending(ctx, c.pool)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		d.RiverPending = pending
		rep.problem("river_behind", false, "River's job tables lack %d migrations (%v): run `cairn migrate`", len(pending), pending)
	}
	return nil
}
