package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairn-mcp/cairn/agents"
	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/internal/backup"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
	"github.com/cairn-mcp/cairn/migrations"
)

// backupSource is a migrated database (cairn's and River's tables, as `cairn migrate` leaves
// it) with rows in every domain: workflows with checkpoints, agents with executions, knowledge
// entities, episodes and relations (one with a vector) and the River job a knowledge write
// queues.
func backupSource(t *testing.T) *testdb.DB {
	t.Helper()
	ctx := context.Background()
	db := testdb.New(t)
	if err := jobs.Migrate(ctx, db.Pool, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatalf("jobs.Migrate: %v", err)
	}
	cp := checkpoint.New(db.Pool)
	for i := range 3 {
		wf, err := cp.Start(ctx, checkpoint.StartParams{Name: fmt.Sprintf("wf %d", i), Input: json.RawMessage(`{"task":"backup"}`)})
		if err != nil {
			t.Fatalf("checkpoint Start: %v", err)
		}
		for step := range 2 {
			state := json.RawMessage(fmt.Sprintf(`{"messages":["step %d"],"count":%d}`, step, step))
			if _, err := cp.Save(ctx, checkpoint.SaveParams{WorkflowID: wf.ID, NodeID: fmt.Sprintf("node-%d", step), State: state}); err != nil {
				t.Fatalf("checkpoint Save: %v", err)
			}
		}
	}
	ag := agents.New(db.Pool)
	a, err := ag.Register(ctx, agents.RegisterParams{Name: "researcher one", Template: "researcher"})
	if err != nil {
		t.Fatalf("agents Register: %v", err)
	}
	for i := range 4 {
		if _, err := ag.Record(ctx, agents.RecordParams{AgentID: a.AgentID, TokensIn: 100 + int64(i), TokensOut: 50, DurationMS: 1200, CostUSD: 0.01, Outcome: "success"}); err != nil {
			t.Fatalf("agents Record: %v", err)
		}
	}
	ins, err := jobs.NewInserter(db.Pool, jobs.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("jobs.NewInserter: %v", err)
	}
	kg := knowledge.New(db.Pool, knowledge.Options{Queue: jobs.EmbedQueue{Client: ins}})
	if _, err := kg.UpsertEntity(ctx, knowledge.EntityInput{Name: "numpy", Type: "library"}); err != nil {
		t.Fatalf("UpsertEntity: %v", err)
	}
	ep, err := kg.AddEpisode(ctx, knowledge.EpisodeInput{Name: "deploy failed", Content: "ModuleNotFoundError: numpy._core after upgrading",
		Type: "error", Mentions: []knowledge.EntityRef{{Name: "numpy", Type: "library"}, {Name: "dashboard", Type: "service"}}})
	if err != nil {
		t.Fatalf("AddEpisode: %v", err)
	}
	if _, err := kg.Relate(ctx, knowledge.RelationInput{Source: knowledge.EntityRef{Name: "dashboard", Type: "service"},
		Target: knowledge.EntityRef{Name: "numpy", Type: "library"}, Type: "depends_on", Fact: "the dashboard imports numpy", EpisodeID: ep.ID}); err != nil {
		t.Fatalf("Relate: %v", err)
	}
	// A vector, so that the archive must carry the vector extension and its type.
	if _, err := db.Pool.Exec(ctx, `UPDATE entities SET embedding = array_fill(0.25::real, ARRAY[(SELECT atttypmod FROM pg_attribute
		WHERE attrelid = 'entities'::regclass AND attname = 'embedding')])::vector WHERE name = 'numpy'`); err != nil {
		t.Fatalf("set an embedding: %v", err)
	}
	return db
}

// tableDigests returns, for every table of schema public, an md5 of its whole contents.
func tableDigests(t *testing.T, conn interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
	QueryRow(context.Context, string, ...any) pgx.Row
}) map[string]string {
	t.Helper()
	ctx := context.Background()
	rows, err := conn.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		var digest, count string
		q := fmt.Sprintf(`SELECT coalesce(md5(string_agg(t::text, ',' ORDER BY t::text)), ''), count(*)::text FROM public.%s t`, pgx.Identifier{n}.Sanitize())
		if err := conn.QueryRow(ctx, q).Scan(&digest, &count); err != nil {
			t.Fatalf("digest %s: %v", n, err)
		}
		out[n] = count + " rows " + digest
	}
	return out
}

// restoreTarget creates an empty database and returns a connection string for --into and a
// connection to it.
func restoreTarget(t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	conn := testdb.Empty(t, "cairn_restore_", "")
	return connURL(conn.Config()), conn
}

// connURL is a libpq connection string for the database cfg connects to.
func connURL(cfg *pgx.ConnConfig) string {
	s := fmt.Sprintf("host='%s' port=%d user='%s' dbname='%s'", cfg.Host, cfg.Port, cfg.User, cfg.Database)
	if cfg.Password != "" {
		s += fmt.Sprintf(" password='%s'", cfg.Password)
	}
	if cfg.TLSConfig == nil {
		s += " sslmode=disable"
	}
	return s
}

// makeBackup runs `cairn backup --json` of db into dir and returns the archive and manifest.
func makeBackup(t *testing.T, db *testdb.DB, dir string, extra ...string) (string, backup.Manifest) {
	t.Helper()
	out := filepath.Join(dir, "cairn.dump")
	r := runCLI(t, []string{"DATABASE_URL=" + db.URL}, append([]string{"backup", "--json", "--out", out}, extra...)...)
	if r.Code != 0 {
		t.Fatalf("cairn backup: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	var m backup.Manifest
	if err := json.Unmarshal([]byte(r.Stdout), &m); err != nil {
		t.Fatalf("cairn backup --json printed no manifest (%v):\n%s", err, r.Stdout)
	}
	return out, m
}

func TestBackupRestoreRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	want := tableDigests(t, src.Pool)
	for _, table := range []string{"workflows", "workflow_checkpoints", "events", "agents", "agent_executions", "entities", "episodes", "relations", "episode_mentions", "river_job", "cairn_migrations", "river_migration"} {
		if strings.HasPrefix(want[table], "0 rows") || want[table] == "" {
			t.Fatalf("the source's %s is empty: the round trip would prove nothing about it (%v)", table, want)
		}
	}
	dir := t.TempDir()
	archive, m := makeBackup(t, src, dir)

	// The manifest: versions, counts of every table, the checksum of the file on disk.
	if m.CairnSchema != migrations.Latest() || m.RiverSchema == 0 || m.Schema != "public" || m.ServerVersionNum == 0 || m.PgDumpVersion == "" || m.Vector == "" {
		t.Errorf("manifest lacks facts: %+v", m)
	}
	if time.Since(m.CreatedAt) > 5*time.Minute {
		t.Errorf("created_at %v is not now", m.CreatedAt)
	}
	if len(m.Tables) != len(want) {
		t.Errorf("manifest counts %d tables, the database has %d", len(m.Tables), len(want))
	}
	for table, digest := range want {
		if n, ok := m.Tables[table]; !ok || !strings.HasPrefix(digest, fmt.Sprintf("%d rows ", n)) {
			t.Errorf("manifest says %s has %d rows (listed: %t); the database: %s", table, n, ok, digest)
		}
	}
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != m.SHA256 || int64(len(data)) != m.Size {
		t.Errorf("manifest checksum %s (%d bytes) is not the archive's", m.SHA256, m.Size)
	}
	if onDisk, err := backup.ReadManifest(archive); err != nil || onDisk.SHA256 != m.SHA256 {
		t.Errorf("sidecar manifest: %v", err)
	}
	if fi, err := os.Stat(archive); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("archive mode: %v %v, want 0600", fi.Mode(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(dir, "*.partial")); len(leftovers) > 0 {
		t.Errorf("partial files left: %v", leftovers)
	}

	into, target := restoreTarget(t)
	r := runCLI(t, nil, "restore", archive, "--into", into)
	if r.Code != 0 {
		t.Fatalf("cairn restore: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	if !strings.Contains(r.Stdout, "restored "+archive) {
		t.Errorf("restore summary: %q", r.Stdout)
	}
	for _, step := range []string{"restore: checksum matches", "restore: row counts match", "restore: migrating"} {
		if !strings.Contains(r.Stderr, step) {
			t.Errorf("restore progress lacks %q:\n%s", step, r.Stderr)
		}
	}
	got := tableDigests(t, target)
	for table, digest := range want {
		if got[table] != digest {
			t.Errorf("%s: restored %q, source %q", table, got[table], digest)
		}
	}
	for table := range got {
		if _, ok := want[table]; !ok {
			t.Errorf("restored database has a table the source lacks: %s", table)
		}
	}
	// The restored database works: identity sequences continue after the restored rows.
	var id int64
	if err := target.QueryRow(ctx, `INSERT INTO agent_executions (agent_id, outcome) SELECT agent_id, 'success' FROM agents LIMIT 1 RETURNING id`).Scan(&id); err != nil {
		t.Fatalf("insert after restore: %v", err)
	}
	if id <= m.Tables["agent_executions"] {
		t.Errorf("new execution id %d collides with restored ones (%d rows)", id, m.Tables["agent_executions"])
	}
}

func TestBackupVerify(t *testing.T) {
	src := backupSource(t)
	dir := t.TempDir()
	good, m := makeBackup(t, src, dir, "--verify")
	env := []string{"DATABASE_URL=" + src.URL}

	// copyArchive makes a copy of the good archive and its manifest that mutate may spoil.
	copyArchive := func(t *testing.T, name string, mutate func(data []byte, m *backup.Manifest) []byte) string {
		t.Helper()
		data, err := os.ReadFile(good)
		if err != nil {
			t.Fatal(err)
		}
		mm := m
		mm.Tables = make(map[string]int64)
		for k, v := range m.Tables {
			mm.Tables[k] = v
		}
		data = mutate(data, &mm)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		mb, _ := json.Marshal(mm)
		if err := os.WriteFile(p+backup.ManifestSuffix, mb, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	resum := func(data []byte, m *backup.Manifest) {
		sum := sha256.Sum256(data)
		m.SHA256, m.Size = hex.EncodeToString(sum[:]), int64(len(data))
	}
	tests := []struct {
		name    string
		mutate  func([]byte, *backup.Manifest) []byte
		wantErr string // "" for success
	}{
		{"intact", func(d []byte, _ *backup.Manifest) []byte { return d }, ""},
		{"bytes flipped in the middle", func(d []byte, _ *backup.Manifest) []byte {
			for i := len(d) / 2; i < len(d)/2+16; i++ {
				d[i] ^= 0xff
			}
			return d
		}, "is corrupted or was changed since the backup"},
		{"truncated, manifest checksum updated to match", func(d []byte, m *backup.Manifest) []byte {
			d = d[:len(d)*2/3]
			resum(d, m)
			return d
		}, "pg_restore"},
		{"a row missing from the archive", func(d []byte, m *backup.Manifest) []byte {
			m.Tables["agents"]++
			return d
		}, fmt.Sprintf("agents: %d rows, the manifest says %d", m.Tables["agents"], m.Tables["agents"]+1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := copyArchive(t, strings.ReplaceAll(tc.name, " ", "_")+".dump", tc.mutate)
			r := runCLI(t, env, "backup", "verify", p)
			if tc.wantErr == "" {
				if r.Code != 0 || !strings.Contains(r.Stdout, ": ok") {
					t.Fatalf("verify of a good archive: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
				}
			} else if r.Code != 1 || !strings.Contains(r.Stderr, tc.wantErr) || !strings.Contains(r.Stderr, "failed verification") {
				t.Fatalf("exit %d, want 1 and an error with %q\nstderr:\n%s", r.Code, tc.wantErr, r.Stderr)
			}
			assertScratchDropped(t, r.Stderr)
		})
	}
}

// assertScratchDropped checks that the scratch database a verify named is gone.
func assertScratchDropped(t *testing.T, stderr string) {
	t.Helper()
	for _, name := range regexp.MustCompile(`cairn_verify_[0-9a-f]+`).FindAllString(stderr, -1) {
		var exists bool
		if err := testdb.Admin(t).QueryRow(context.Background(), "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("scratch database %s was left behind", name)
		}
	}
}

func TestRestoreNonEmptyTarget(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	want := tableDigests(t, src.Pool)
	archive, _ := makeBackup(t, src, t.TempDir())

	target := testdb.New(t) // migrated: cairn's tables are there
	if _, err := target.Pool.Exec(ctx, `CREATE TABLE leftover (id int); INSERT INTO leftover VALUES (1);
		CREATE VIEW leftover_view AS SELECT * FROM leftover`); err != nil {
		t.Fatal(err)
	}
	into := connURL(target.Pool.Config().ConnConfig)

	r := runCLI(t, nil, "restore", archive, "--into", into)
	if r.Code != 1 || !strings.Contains(r.Stderr, "is not empty") || !strings.Contains(r.Stderr, "--clean") {
		t.Fatalf("restore into a non-empty database: exit %d, want 1 and a refusal naming --clean\nstderr:\n%s", r.Code, r.Stderr)
	}
	var leftover int
	if err := target.Pool.QueryRow(ctx, "SELECT count(*) FROM leftover").Scan(&leftover); err != nil || leftover != 1 {
		t.Fatalf("the refused restore touched the target: %v", err)
	}

	r = runCLI(t, nil, "restore", "--clean", archive, "--into", into)
	if r.Code != 0 {
		t.Fatalf("restore --clean: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	conn, err := pgx.Connect(ctx, into)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	got := tableDigests(t, conn)
	if _, ok := got["leftover"]; ok {
		t.Error("--clean kept a table the archive lacks")
	}
	for table, digest := range want {
		if got[table] != digest {
			t.Errorf("%s: restored %q, source %q", table, got[table], digest)
		}
	}
	var vector bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'vector')").Scan(&vector); err != nil || !vector {
		t.Errorf("the vector extension is gone after --clean (%v)", err)
	}
}

func TestBackupFailures(t *testing.T) {
	src := testdb.New(t)
	env := []string{"DATABASE_URL=" + src.URL}
	var serverNum int
	if err := src.Pool.QueryRow(context.Background(), "SELECT current_setting('server_version_num')::int").Scan(&serverNum); err != nil {
		t.Fatal(err)
	}
	major := fmt.Sprint(serverNum / 10000)
	dir := t.TempDir()
	existing := filepath.Join(dir, "existing.dump")
	if err := os.WriteFile(existing, []byte("an older backup"), 0o600); err != nil {
		t.Fatal(err)
	}
	noTools := t.TempDir() // neither pg_dump nor anything else

	tests := []struct {
		name     string
		env      []string
		args     []string
		code     int
		stderr   []string
		noOutput string // a file that must not exist afterwards, "" for none
	}{
		{"pg_dump missing", []string{"PATH=" + noTools}, []string{"backup", "--out", filepath.Join(dir, "a.dump"), "--pg-bindir", noTools},
			1, []string{"pg_dump not found", "postgresql-client-" + major, "--pg-bindir / CAIRN_PG_BINDIR"}, filepath.Join(dir, "a.dump")},
		{"pg_dump missing from CAIRN_PG_BINDIR", []string{"CAIRN_PG_BINDIR=" + noTools}, []string{"backup", "--out", filepath.Join(dir, "b.dump")},
			1, []string{"pg_dump not found", noTools}, filepath.Join(dir, "b.dump")},
		{"existing archive", nil, []string{"backup", "--out", existing},
			1, []string{"exists", "--force"}, ""},
		{"backup with an argument", nil, []string{"backup", "x.dump"}, 2, []string{"--out"}, ""},
		{"restore without an archive", nil, []string{"restore"}, 2, []string{"takes one archive"}, ""},
		{"restore of two archives", nil, []string{"restore", "a.dump", "b.dump"}, 2, []string{"takes one archive"}, ""},
		{"restore without a manifest", nil, []string{"restore", existing}, 1, []string{"no manifest", backup.ManifestSuffix}, ""},
		{"verify without an archive", nil, []string{"backup", "verify"}, 2, []string{"takes one archive"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := runCLI(t, append(append([]string{}, env...), tc.env...), tc.args...)
			if r.Code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.Code, tc.code, r.Stdout, r.Stderr)
			}
			for _, s := range tc.stderr {
				if !strings.Contains(r.Stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, r.Stderr)
				}
			}
			if tc.noOutput != "" {
				for _, p := range []string{tc.noOutput, tc.noOutput + ".partial", tc.noOutput + backup.ManifestSuffix} {
					if _, err := os.Stat(p); err == nil {
						t.Errorf("a failed backup left %s", p)
					}
				}
			}
		})
	}
	if b, err := os.ReadFile(existing); err != nil || string(b) != "an older backup" {
		t.Errorf("the refused backup touched the existing archive: %q %v", b, err)
	}
	r := runCLI(t, env, "backup", "--force", "--out", existing)
	if r.Code != 0 {
		t.Fatalf("backup --force: exit %d\nstderr:\n%s", r.Code, r.Stderr)
	}
	if _, err := backup.ReadManifest(existing); err != nil {
		t.Errorf("after --force: %v", err)
	}
}

// --into-db NAME --create restores into a new database beside the configured one, which it
// creates: no connection string to write by hand (the embedded cluster's is a socket path).
func TestRestoreCreatesTheDatabase(t *testing.T) {
	ctx := context.Background()
	src := backupSource(t)
	want := tableDigests(t, src.Pool)
	archive, _ := makeBackup(t, src, t.TempDir())
	name := "cairn_created_" + strings.ToLower(strings.ReplaceAll(t.Name(), "/", "_"))[:8] + fmt.Sprint(time.Now().UnixNano()%1e6)
	admin := testdb.Admin(t)
	t.Cleanup(func() { admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") })
	r := runCLI(t, []string{"DATABASE_URL=" + src.URL}, "restore", archive, "--into-db", name, "--create")
	if r.Code != 0 || !strings.Contains(r.Stderr, "restore: created database "+name) {
		t.Fatalf("cairn restore --create: exit %d\nstdout:\n%s\nstderr:\n%s", r.Code, r.Stdout, r.Stderr)
	}
	cfg := admin.Config().Copy()
	cfg.Database = name
	target, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close(ctx)
	got := tableDigests(t, target)
	for table, digest := range want {
		if got[table] != digest {
			t.Errorf("%s: restored %q, source %q", table, got[table], digest)
		}
	}
	// Without --create, a database that does not exist is an error that says so.
	r = runCLI(t, []string{"DATABASE_URL=" + src.URL}, "restore", archive, "--into-db", name+"_missing")
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not exist") {
		t.Errorf("restore into a missing database: exit %d\n%s", r.Code, r.Stderr)
	}
}
