package pgcluster

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// baseDir makes a dir for one test's clusters. As root the cluster runs as the postgres user,
// which must be able to pass through it, so it is 0755 rather than t.TempDir's 0700.
func baseDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "cairn-pgcluster-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newCluster makes a cluster whose server is stopped when the test ends, whatever happened.
func newCluster(t *testing.T, dataDir string) *Cluster {
	t.Helper()
	c, err := New(Options{DataDir: dataDir, Logger: testLogger(t)})
	var missing *MissingBinariesError
	if errors.As(err, &missing) {
		t.Fatalf("no PostgreSQL server binaries on this machine (install them: apt-get install postgresql): %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopForGood(t, c) })
	return c
}

func stopForGood(t *testing.T, c *Cluster) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop: %v", err)
	}
	// A server left behind would outlive the test and its removed dir.
	if pf, ok := readPIDFile(c.DataDir()); ok && processState(pf.pid) == procAlive {
		t.Errorf("server PID %d still runs after Stop; killing it", pf.pid)
		syscall.Kill(pf.pid, syscall.SIGKILL)
	}
}

func start(t *testing.T, c *Cluster) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	began := time.Now()
	if err := c.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return time.Since(began)
}

func status(t *testing.T, c *Cluster) Status {
	t.Helper()
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatalf("Status: %v", err)
	}
	return st
}

func connect(t *testing.T, c *Cluster) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), c.ConnString())
	if err != nil {
		t.Fatalf("connect to %s: %v", c.ConnString(), err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func wantSuperuser(t *testing.T) string {
	if os.Geteuid() == 0 {
		return "postgres"
	}
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return u.Username
}

func TestLifecycle(t *testing.T) {
	dataDir := filepath.Join(baseDir(t), "postgres")
	c := newCluster(t, dataDir)
	ctx := context.Background()

	st := status(t, c)
	if st.Initialized || st.Running || st.PID != 0 {
		t.Errorf("before Start: %+v, want neither initialized nor running", st)
	}
	if !strings.HasPrefix(st.Version, "1") || !strings.Contains(st.Version, ".") {
		t.Errorf("before Start: Version %q, want the binaries' major.minor", st.Version)
	}

	t.Logf("fresh init + start: %v", start(t, c).Round(time.Millisecond))

	st = status(t, c)
	if !st.Initialized || !st.Running || st.PID <= 0 {
		t.Errorf("after Start: %+v, want initialized and running with a PID", st)
	}
	if st.DataDir != dataDir || st.SocketDir != dataDir+".run" || st.Database != "cairn" || st.ConnString != c.ConnString() {
		t.Errorf("after Start: %+v", st)
	}
	if !st.VectorAvailable {
		t.Errorf("VectorAvailable false; this machine has pgvector installed")
	}
	wantConn := "host=" + dataDir + ".run port=5432 dbname=cairn user=" + wantSuperuser(t) + " sslmode=disable"
	if c.ConnString() != wantConn {
		t.Errorf("ConnString %q, want %q", c.ConnString(), wantConn)
	}
	if fi, err := os.Stat(st.SocketDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket dir %s: %v, mode %v; want 0700", st.SocketDir, err, fi.Mode().Perm())
	}

	conn := connect(t, c)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1: %v, %d", err, one)
	}
	if _, err := conn.Exec(ctx, "CREATE EXTENSION vector"); err != nil {
		t.Errorf("CREATE EXTENSION vector: %v", err)
	}
	var listen, serverVersion string
	if err := conn.QueryRow(ctx, "SELECT current_setting('listen_addresses'), current_setting('server_version')").Scan(&listen, &serverVersion); err != nil {
		t.Fatal(err)
	}
	if listen != "" {
		t.Errorf("listen_addresses = %q, want '' (unix socket only)", listen)
	}
	if !strings.HasPrefix(serverVersion, st.Version) {
		t.Errorf("Status.Version %q, server says %q", st.Version, serverVersion)
	}
	var tcpNotRejected, cairnSettings int
	if err := conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_hba_file_rules WHERE type LIKE 'host%' AND auth_method <> 'reject'),
		(SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%/cairn.conf' AND error IS NULL)`).Scan(&tcpNotRejected, &cairnSettings); err != nil {
		t.Fatal(err)
	}
	if tcpNotRejected != 0 {
		t.Errorf("%d pg_hba.conf host lines do not reject", tcpNotRejected)
	}
	if cairnSettings != 4 {
		t.Errorf("the server read %d settings from cairn.conf, want 4", cairnSettings)
	}

	// Already running: the start-up path of cairn serve.
	const n = 20
	var total time.Duration
	for range n {
		total += start(t, c)
	}
	t.Logf("Start when already running: %v on average over %d calls", (total / n).Round(10*time.Microsecond), n)
	if again := status(t, c); again.PID != st.PID {
		t.Errorf("Start on a running server changed the PID from %d to %d", st.PID, again.PID)
	}

	// Another process sees the same settings.
	other, err := New(Options{DataDir: dataDir, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if other.ConnString() != c.ConnString() {
		t.Errorf("a second New gives %q, want %q", other.ConnString(), c.ConnString())
	}

	conn.Close(ctx)
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	st = status(t, c)
	if !st.Initialized || st.Running || st.PID != 0 {
		t.Errorf("after Stop: %+v, want initialized, not running", st)
	}
	if err := c.Stop(ctx); err != nil {
		t.Errorf("Stop when stopped: %v", err)
	}

	t.Logf("start of a stopped cluster: %v", start(t, c).Round(time.Millisecond))
	if !status(t, c).Running {
		t.Error("not running after the second Start")
	}
}

func TestConcurrentStart(t *testing.T) {
	dataDir := filepath.Join(baseDir(t), "postgres")
	// Two Clusters, as two cairn processes would have; both take the file lock.
	clusters := []*Cluster{newCluster(t, dataDir), newCluster(t, dataDir), newCluster(t, dataDir)}
	var wg sync.WaitGroup
	errs := make([]error, len(clusters))
	for i, c := range clusters {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			errs[i] = c.Start(ctx)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Start %d: %v", i, err)
		}
	}
	if st := status(t, clusters[1]); !st.Running {
		t.Errorf("not running: %+v", st)
	}
	var one int
	if err := connect(t, clusters[2]).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Error(err)
	}
}

func TestStartAfterKill(t *testing.T) {
	c := newCluster(t, filepath.Join(baseDir(t), "postgres"))
	start(t, c)
	old := status(t, c).PID
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", old, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for processState(old) == procAlive {
		if time.Now().After(deadline) {
			t.Fatalf("PID %d still alive after kill -9", old)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if st := status(t, c); st.Running {
		t.Errorf("Status after kill -9: %+v, want not running", st)
	}

	t.Logf("start after kill -9 (PID %d was %v): %v", old, processState(old), start(t, c).Round(time.Millisecond))
	st := status(t, c)
	if !st.Running || st.PID == old {
		t.Fatalf("after restart: %+v, want running with a new PID", st)
	}
	var one int
	if err := connect(t, c).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Error(err)
	}
}

func TestLongDataDirUsesTmpSocket(t *testing.T) {
	base := baseDir(t)
	long := filepath.Join(base, strings.Repeat("d", 60), strings.Repeat("e", 60))
	if err := os.MkdirAll(long, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Dir(long), 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(long, "postgres")
	c := newCluster(t, dataDir)
	sock := c.settings.SocketDir
	if !strings.HasPrefix(sock, "/tmp/cairn-") {
		t.Fatalf("socket dir %s for the data dir %s (%d bytes), want a fallback under /tmp", sock, dataDir, len(dataDir))
	}
	t.Cleanup(func() { os.RemoveAll(sock) })
	start(t, c)
	st := status(t, c)
	if st.SocketDir != sock || !strings.Contains(st.ConnString, "host="+sock+" ") {
		t.Errorf("Status %+v, want socket dir %s", st, sock)
	}
	fi, err := os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 || int(fi.Sys().(*syscall.Stat_t).Uid) != c.owner.uid {
		t.Errorf("socket dir %s: mode %v uid %d, want 0700 owned by uid %d", sock, fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Uid, c.owner.uid)
	}
	var one int
	if err := connect(t, c).QueryRow(context.Background(), "SELECT 1").Scan(&one); err != nil {
		t.Error(err)
	}
}

func TestSocketDirTrapRefused(t *testing.T) {
	base := baseDir(t)
	c := newCluster(t, filepath.Join(base, "postgres"))
	// A symlink where the socket dir belongs could point connections anywhere.
	if err := os.Symlink(base, c.settings.SocketDir); err != nil {
		t.Fatal(err)
	}
	err := c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "is not a directory") {
		t.Fatalf("Start with a symlinked socket dir: %v, want a refusal", err)
	}
}

func TestMissingBinaries(t *testing.T) {
	empty := t.TempDir()
	_, err := New(Options{DataDir: filepath.Join(empty, "data"), BinDir: empty})
	var missing *MissingBinariesError
	if !errors.As(err, &missing) {
		t.Fatalf("New with an empty BinDir: %v, want *MissingBinariesError", err)
	}
	for _, want := range []string{"PostgreSQL server binaries not found", empty, "initdb", `apt-get install postgresql`, "CAIRN_PG_BINDIR", "DATABASE_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}

	t.Setenv("CAIRN_PG_BINDIR", empty)
	_, err = New(Options{DataDir: filepath.Join(empty, "data")})
	if !errors.As(err, &missing) || !strings.Contains(err.Error(), "$CAIRN_PG_BINDIR") {
		t.Fatalf("New with an empty $CAIRN_PG_BINDIR: %v, want *MissingBinariesError naming it", err)
	}

	want := `PostgreSQL server binaries not found (looked in $CAIRN_PG_BINDIR, pg_config --bindir, /usr/lib/postgresql/*/bin, PATH); install them with "apt-get install postgresql" (Debian/Ubuntu) or set CAIRN_PG_BINDIR, or set DATABASE_URL to use an existing server`
	searched := &MissingBinariesError{Looked: []string{"$CAIRN_PG_BINDIR", "pg_config --bindir", "/usr/lib/postgresql/*/bin", "PATH"}}
	if searched.Error() != want {
		t.Errorf("got  %s\nwant %s", searched.Error(), want)
	}
}

func TestRootWithoutPostgresUser(t *testing.T) {
	_, err := clusterUser(true, "cairn-no-such-user")
	if err == nil || !strings.Contains(err.Error(), "PostgreSQL will not run as root") || !strings.Contains(err.Error(), "useradd --system cairn-no-such-user") {
		t.Fatalf("clusterUser as root without the user: %v", err)
	}
}

func TestRootNeedsTraversableParents(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root hands the cluster to the postgres user")
	}
	private := t.TempDir() // 0700, owned by root
	c := newCluster(t, filepath.Join(private, "cairn", "postgres"))
	err := c.Start(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot enter") {
		t.Fatalf("Start under a 0700 root dir: %v, want an error saying postgres cannot enter it", err)
	}
	if fi, err := os.Stat(filepath.Join(private, "cairn")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("created parent: %v %v, want 0755", err, fi.Mode().Perm())
	}
}

func TestDataDirDefaults(t *testing.T) {
	t.Setenv("CAIRN_DATA_DIR", "")
	t.Setenv("XDG_DATA_HOME", "/xdg")
	t.Setenv("HOME", "/home/someone")
	for _, tc := range []struct {
		explicit string
		root     bool
		env      map[string]string
		want     string
	}{
		{explicit: "/x/y", want: "/x/y"},
		{env: map[string]string{"CAIRN_DATA_DIR": "/srv/cairn"}, root: true, want: "/srv/cairn"},
		{root: true, want: "/var/lib/cairn/postgres"},
		{want: "/xdg/cairn/postgres"},
		{env: map[string]string{"XDG_DATA_HOME": "relative"}, want: "/home/someone/.local/share/cairn/postgres"},
	} {
		for k, v := range tc.env {
			t.Setenv(k, v)
		}
		got, err := dataDir(tc.explicit, tc.root)
		if err != nil || got != tc.want {
			t.Errorf("dataDir(%q, root=%v) with %v = %q, %v; want %q", tc.explicit, tc.root, tc.env, got, err, tc.want)
		}
		t.Setenv("CAIRN_DATA_DIR", "")
		t.Setenv("XDG_DATA_HOME", "/xdg")
	}
	if _, err := dataDir(`/tmp/a"b`, false); err == nil {
		t.Error(`dataDir accepted a path with " that pg_ctl's shell would mangle`)
	}
}

func TestBadDataDirs(t *testing.T) {
	base := baseDir(t)

	// A cluster without cairn's settings file: interrupted in place, or not cairn's.
	foreign := filepath.Join(base, "foreign")
	os.MkdirAll(foreign, 0o700)
	os.WriteFile(filepath.Join(foreign, "PG_VERSION"), []byte("15\n"), 0o600)
	if err := newCluster(t, foreign).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "did not finish creating") {
		t.Errorf("Start on a cluster cairn did not create: %v", err)
	}

	// Made by a newer/older major version than the binaries.
	other := filepath.Join(base, "other")
	os.MkdirAll(other, 0o700)
	os.WriteFile(filepath.Join(other, "PG_VERSION"), []byte("9.4\n"), 0o600)
	os.WriteFile(filepath.Join(other, settingsFile), []byte(`{"socket_dir":"/nonexistent","port":5432,"superuser":"x"}`), 0o600)
	if err := newCluster(t, other).Start(context.Background()); err == nil || !strings.Contains(err.Error(), "created by PostgreSQL 9.4") {
		t.Errorf("Start on a cluster of another major version: %v", err)
	}

	// The scratch dir of an interrupted first initdb is cleared away.
	dataDir := filepath.Join(base, "postgres")
	scratch := filepath.Join(base, ".postgres.initdb")
	os.MkdirAll(filepath.Join(scratch, "base"), 0o700)
	os.WriteFile(filepath.Join(scratch, "PG_VERSION"), []byte("15\n"), 0o600)
	c := newCluster(t, dataDir)
	start(t, c)
	if _, err := os.Stat(scratch); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("scratch dir %s still there: %v", scratch, err)
	}
	if !status(t, c).Running {
		t.Error("not running")
	}

	// A server that will not start: the error carries the log's last lines.
	ctx := context.Background()
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dataDir, "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("shared_buffers = 'lots'\n")
	f.Close()
	err = c.Start(ctx)
	if err == nil || !strings.Contains(err.Error(), "last lines of "+c.LogPath()) || !strings.Contains(err.Error(), "shared_buffers") {
		t.Errorf("Start with a broken postgresql.conf: %v, want the log's complaint about shared_buffers", err)
	}
	t.Logf("Start with a broken postgresql.conf fails with:\n%v", err)
}

func TestLockWaitEndsWithContext(t *testing.T) {
	c := newCluster(t, filepath.Join(baseDir(t), "postgres"))
	unlock, err := c.lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := c.Start(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "another cairn process") {
		t.Errorf("Start while another holds the lock: %v, want a deadline error naming the lock", err)
	}
}
