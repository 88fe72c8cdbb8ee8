package backup

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"github.com/jackc/pgx/v5"
)

// database is what restoring needs of the target: a pool or a single connection.
type database interface {
	querier
	Begin(ctx context.Context) (pgx.Tx, error)
}

// RestoreOptions are the settings of Restore.
type RestoreOptions struct {
	// Clean drops what the target schema holds before restoring; without it a target schema
	// that holds anything is refused.
	Clean bool
	// BinDir holds pg_restore (--pg-bindir); "" searches PATH, then /usr/lib/postgresql/*/bin.
	BinDir string
	// Step reports each step as it starts or ends; nil for silence.
	Step func(msg string)
}

// NotEmptyError says the target schema already holds objects and Clean was not set.
type NotEmptyError struct {
	Database, Schema string
	Tables           []string // the tables in the schema
	Others           int      // how many other objects (sequences, functions, types, ...)
}

func (e *NotEmptyError) Error() string {
	what := fmt.Sprintf("%d other object(s)", e.Others)
	if n := len(e.Tables); n > 0 {
		names := strings.Join(e.Tables[:min(n, 5)], ", ")
		if n > 5 {
			names += ", ..."
		}
		what = fmt.Sprintf("%d table(s) (%s) and %s", n, names, what)
	}
	return fmt.Sprintf("database %s is not empty: schema %s holds %s; restore into an empty database, or pass --clean to drop them first",
		e.Database, e.Schema, what)
}

// SchemaMismatchError says the target's connections would not see the restored tables: the
// archive holds one schema and the target's search_path resolves to another.
type SchemaMismatchError struct{ Archive, Target string }

func (e *SchemaMismatchError) Error() string {
	return fmt.Sprintf("the archive holds schema %s but connections to the target use schema %s (search_path): cairn would not find the restored tables there; set search_path (e.g. options='-c search_path=%s') or restore into a database where %s comes first",
		e.Archive, e.Target, e.Archive, e.Archive)
}

// Restore restores the archive into the database db connects to (conn reaches the same database
// for pg_restore): it checks the checksum, refuses a target schema that holds anything (or with
// Clean drops it), runs pg_restore in one transaction and checks every table's row count against
// the manifest. It does not migrate: the caller does, after Restore has proven the data whole.
func Restore(ctx context.Context, db database, conn Conn, archive string, m *Manifest, opts RestoreOptions) error {
	step := opts.Step
	if step == nil {
		step = func(string) {}
	}
	if err := CheckChecksum(archive, m); err != nil {
		return err
	}
	step(fmt.Sprintf("checksum matches the manifest (sha256 %s)", m.SHA256[:16]))
	tool, err := findRestoreTool(ctx, opts.BinDir, m)
	if err != nil {
		return err
	}
	dropped, err := prepareTarget(ctx, db, conn.Database(), m, opts.Clean, true)
	if err != nil {
		return err
	}
	if opts.Clean {
		step(fmt.Sprintf("dropped %d object(s) from schema %s", dropped, m.Schema))
	}
	step(fmt.Sprintf("restoring with %s %s", tool.Path, tool.Version.MajorString()))
	if err := pgRestore(ctx, tool, conn, archive, m); err != nil {
		return err
	}
	counts, err := countRowsUnlimited(ctx, db, m.Schema)
	if err != nil {
		return err
	}
	if err := compareCounts(m.Tables, counts); err != nil {
		return err
	}
	step(fmt.Sprintf("row counts match the manifest: %d table(s), %d row(s)", len(m.Tables), m.Rows()))
	return nil
}

// findRestoreTool finds a pg_restore that reads the archive: archive formats change with
// pg_dump's major version, and an older pg_restore refuses a newer one.
func findRestoreTool(ctx context.Context, binDir string, m *Manifest) (Tool, error) {
	v, err := ParseVersion(m.PgDumpVersion)
	if err != nil {
		return Tool{}, fmt.Errorf("manifest's pg_dump version: %w", err)
	}
	return FindTool(ctx, "pg_restore", binDir, Need{Version: v.Major(), Why: "that of the pg_dump that wrote the archive, " + v.MajorString()})
}

// prepareTarget makes the archive's schema ready to restore into, in one transaction: it creates
// the schema (and the vector extension's) if missing, checks that the target's connections use
// it (checkCurrent) and that it is empty, or with clean empties it. It returns how many objects
// it dropped.
//
// --clean drops every object in the schema that no extension owns, tables first, each with
// CASCADE, rather than the schema itself: pg_restore --clean --if-exists would only drop what the
// archive has, leaving tables it lacks (a newer cairn's, a user's) in the way; and DROP SCHEMA
// would take the vector extension with it — which only a superuser may create again, pgvector
// not being a trusted extension — and the schema's owner and grants. CASCADE also drops objects
// elsewhere that depend on these (a view in another schema over a cairn table).
func prepareTarget(ctx context.Context, db database, dbname string, m *Manifest, clean, checkCurrent bool) (int, error) {
	tx, err := db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("prepare the target: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	for _, s := range []string{m.Schema, m.VectorSchema} {
		if s == "" {
			continue
		}
		// CREATE SCHEMA IF NOT EXISTS wants the CREATE privilege on the database even when the
		// schema exists, which a role restoring into public need not have.
		var exists bool
		if err := tx.QueryRow(ctx, schemaExistsSQL, s).Scan(&exists); err != nil {
			return 0, fmt.Errorf("look up schema %s: %w", s, err)
		}
		if !exists {
			if _, err := tx.Exec(ctx, fmt.Sprintf(createSchemaSQL, pgx.Identifier{s}.Sanitize())); err != nil {
				return 0, fmt.Errorf("create schema %s: %w", s, err)
			}
		}
	}
	if checkCurrent {
		var current *string
		if err := tx.QueryRow(ctx, currentSchemaSQL).Scan(&current); err != nil {
			return 0, fmt.Errorf("read the target's current schema: %w", err)
		}
		if current == nil || *current != m.Schema {
			target := "none"
			if current != nil {
				target = *current
			}
			return 0, &SchemaMismatchError{Archive: m.Schema, Target: target}
		}
	}
	objs, err := schemaObjects(ctx, tx, m.Schema)
	if err != nil {
		return 0, err
	}
	if len(objs) > 0 && !clean {
		e := &NotEmptyError{Database: dbname, Schema: m.Schema}
		for _, o := range objs {
			if o.Kind == "TABLE" {
				e.Tables = append(e.Tables, o.Identity)
			} else {
				e.Others++
			}
		}
		return 0, e
	}
	for _, o := range objs {
		// IF EXISTS: an earlier CASCADE may have taken it (a partition with its parent, a
		// sequence with its table).
		if _, err := tx.Exec(ctx, fmt.Sprintf(dropObjectSQL, o.Kind, o.Identity)); err != nil {
			return 0, fmt.Errorf("--clean: drop %s %s: %w", strings.ToLower(o.Kind), o.Identity, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("prepare the target: %w", err)
	}
	return len(objs), nil
}

// pgRestore runs pg_restore in a single transaction, so that a failure leaves nothing half
// restored, on the archive's table of contents less what the target already has or a restoring
// role may not touch (see restoreList).
func pgRestore(ctx context.Context, tool Tool, conn Conn, archive string, m *Manifest) error {
	var toc, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, tool.Path, "--list", archive)
	cmd.Stdout, cmd.Stderr = &toc, &errOut
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("read the archive's table of contents: %w", &ToolError{Tool: "pg_restore --list", Status: err.Error(), Stderr: strings.TrimSpace(errOut.String())})
	}
	list, err := os.CreateTemp("", "cairn-restore-*.list")
	if err != nil {
		return fmt.Errorf("pg_restore list: %w", err)
	}
	defer os.Remove(list.Name())
	_, err = list.WriteString(restoreList(toc.String(), m.Schema))
	if cerr := list.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pg_restore list: %w", err)
	}
	return runTool(ctx, tool, conn, "--no-owner", "--exit-on-error", "--single-transaction", "--no-password",
		"--use-list="+list.Name(), "--dbname="+conn.String(), archive)
}

// restoreList filters pg_restore --list output. It drops the schema's own entries (a schema
// dump creates its schema, but the target has it: an empty database has public, and
// prepareTarget made any other) and the extension comments, which only the extension's owner
// may set and which CREATE EXTENSION sets anyway.
func restoreList(toc, schema string) string {
	skip := []string{"SCHEMA - " + schema + " ", "COMMENT - SCHEMA " + schema + " ", "ACL - SCHEMA " + schema + " ", "COMMENT - EXTENSION "}
	var out strings.Builder
	sc := bufio.NewScanner(strings.NewReader(toc))
	sc.Buffer(make([]byte, 0, 64*1024), 16<<20)
	for sc.Scan() {
		line := sc.Text()
		if entry, ok := tocEntry(line); ok {
			if hasAnyPrefix(entry+" ", skip) {
				continue
			}
		}
		out.WriteString(line + "\n")
	}
	return out.String()
}

// tocEntry returns what follows "<id>; <catalog oid> <object oid> " in a --list line, e.g.
// "TABLE public workflows postgres".
func tocEntry(line string) (string, bool) {
	_, rest, ok := strings.Cut(line, "; ")
	if !ok || strings.HasPrefix(line, ";") {
		return "", false
	}
	f := strings.SplitN(rest, " ", 3)
	if len(f) < 3 {
		return "", false
	}
	return f[2], true
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
