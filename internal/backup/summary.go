package backup

import (
	"context"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/migrations"
)

// WriteSummary writes what `cairn backup` made for people: the archive at path, its manifest,
// the source and the tables; verified says it was restored into a scratch database.
func (m *Manifest) WriteSummary(w io.Writer, path string, verified bool) {
	fmt.Fprintf(w, "archive:   %s (%d bytes, sha256 %s)\n", path, m.Size, m.SHA256)
	fmt.Fprintf(w, "manifest:  %s\n", path+ManifestSuffix)
	fmt.Fprintf(w, "database:  %s, schema %s (cairn schema %d, River %d), PostgreSQL %s\n", m.Database, m.Schema, m.CairnSchema, m.RiverSchema, m.ServerVersion)
	fmt.Fprintf(w, "tables:    %d (%d rows)\n", len(m.Tables), m.Rows())
	if verified {
		fmt.Fprintln(w, "verified:  restored into a scratch database; every table's row count matches")
	}
}

// CheckRestorable refuses an archive whose cairn schema is newer than this cairn's migrations:
// restored, it would hold tables this cairn does not know how to use.
func (m *Manifest) CheckRestorable() error {
	if latest := migrations.Latest(); m.CairnSchema > latest {
		return fmt.Errorf("the archive's cairn schema is at migration %d but this cairn knows only up to %d: restore it with a cairn at least as new as %s, which made it", m.CairnSchema, latest, m.CairnVersion)
	}
	return nil
}

// CreateDatabase creates the database name through admin (a connection to another database of
// the same server, e.g. "postgres") unless it exists, and reports whether it did.
func CreateDatabase(ctx context.Context, admin *pgxpool.Pool, name string) (bool, error) {
	var exists bool
	if err := admin.QueryRow(ctx, databaseExistsSQL, name).Scan(&exists); err != nil {
		return false, fmt.Errorf("look for database %s: %w", name, err)
	}
	if exists {
		return false, nil
	}
	if _, err := admin.Exec(ctx, fmt.Sprintf(createDatabaseSQL, pgx.Identifier{name}.Sanitize())); err != nil {
		return false, fmt.Errorf("create database %s (--create needs a role that may create databases): %w", name, err)
	}
	return true, nil
}
