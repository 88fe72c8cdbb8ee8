package pgcluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

const (
	// pgCtlTimeout bounds pg_ctl's wait for the server (seconds): crash recovery after an
	// unclean stop can take a while.
	pgCtlTimeout = "60"
	// logRotateSize: pg_ctl only ever appends to the server log, so Start moves it aside to
	// <log>.1 beyond this size.
	logRotateSize = 16 << 20
	// connectTimeout bounds each connection to the server, including waiting while it finishes
	// crash recovery.
	connectTimeout = 30 * time.Second
)

// Start creates the cluster if needed (initdb), starts the server unless it runs, and creates the
// database if missing. It is idempotent, cheap when the server already runs, and safe to call
// from several processes at once.
func (c *Cluster) Start(ctx context.Context) error {
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	fresh := !c.initialized()
	if fresh {
		if err := c.initialize(ctx); err != nil {
			return err
		}
	}
	if err := c.ensureServer(ctx); err != nil {
		return err
	}
	conn, err := c.connectDatabase(ctx, fresh)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	version, vector, err := serverInfo(ctx, conn)
	if err != nil {
		return fmt.Errorf("query the cluster's server in %s: %w", c.dataDir, err)
	}
	if !vector {
		major, _, _ := strings.Cut(version, ".")
		c.log.Warn("pgcluster: pgvector is not installed for this PostgreSQL, so vector search is unavailable; install it with apt-get install postgresql-"+major+"-pgvector, or run scripts/ensure-pgvector.sh from the cairn source tree",
			"version", version, "bin_dir", c.binDir)
	}
	return nil
}

// Stop shuts the server down (pg_ctl stop -m fast), ending open sessions. It returns nil when the
// server is not running.
func (c *Cluster) Stop(ctx context.Context) error {
	if !c.initialized() {
		return nil
	}
	unlock, err := c.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()

	if !c.serverAlive() {
		return nil
	}
	out, err := c.run(ctx, false, "pg_ctl", "stop", "-D", c.dataDir, "-m", "fast", "-w", "-t", pgCtlTimeout)
	if err != nil {
		if !c.serverAlive() {
			return nil // it went down anyway, e.g. stopped by someone else meanwhile
		}
		return fmt.Errorf("stop PostgreSQL in %s: %w\n%s\nlast lines of %s:\n%s",
			c.dataDir, err, out, c.LogPath(), tailLines(c.LogPath(), 20))
	}
	c.log.Info("pgcluster: stopped PostgreSQL", "data_dir", c.dataDir)
	return nil
}

// Status reports the cluster's state. On error the returned Status still holds what could be
// found out.
func (c *Cluster) Status(ctx context.Context) (Status, error) {
	st := Status{
		DataDir:     c.dataDir,
		SocketDir:   c.settings.SocketDir,
		Initialized: c.initialized(),
		Database:    c.database,
		ConnString:  c.ConnString(),
	}
	if pf, ok := readPIDFile(c.dataDir); ok && processState(pf.pid) == procAlive {
		st.Running, st.PID = true, pf.pid
		conn, err := c.connect(ctx, c.database)
		if isCode(err, "3D000") { // Start has not created it yet
			conn, err = c.connect(ctx, "postgres")
		}
		if err != nil {
			return st, fmt.Errorf("the server of %s (PID %d) does not answer on %s: %w", c.dataDir, pf.pid, c.settings.SocketDir, err)
		}
		defer conn.Close(context.WithoutCancel(ctx))
		st.Version, st.VectorAvailable, err = serverInfo(ctx, conn)
		if err != nil {
			return st, fmt.Errorf("query the server of %s: %w", c.dataDir, err)
		}
		return st, nil
	}
	st.VectorAvailable = c.vectorFilesInstalled(ctx)
	var err error
	st.Version, err = c.binaryVersion(ctx)
	return st, err
}

// lock takes the exclusive lock that serialises creating, starting and stopping the cluster
// across processes. flock is released by the kernel if the process dies, so a crash never
// leaves the cluster locked.
func (c *Cluster) lock(ctx context.Context) (unlock func(), err error) {
	if err := c.ensureParent(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(c.lockPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file %s: %w (choose a writable data dir with CAIRN_DATA_DIR)", c.lockPath(), err)
	}
	fd := int(f.Fd())
	// Polled rather than blocking so that ctx can end the wait.
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil // closing the last descriptor releases the lock
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", c.lockPath(), err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("wait for %s (another cairn process is creating, starting or stopping the cluster): %w", c.lockPath(), ctx.Err())
		case <-time.After(delay):
		}
	}
}

// ensureParent creates the data dir's parent, which holds the lock, log and socket dirs. As
// root it must be 0755 (and its ancestors searchable) so that the postgres user reaches its
// data and socket dirs.
func (c *Cluster) ensureParent() error {
	parent := c.parent()
	perm := fs.FileMode(0o700)
	if c.owner.switchTo {
		perm = 0o755
	}
	var created []string
	for d := parent; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || filepath.Dir(d) == d {
			break
		}
		created = append(created, d)
	}
	if err := os.MkdirAll(parent, perm); err != nil {
		return fmt.Errorf("create %s for the PostgreSQL data dir: %w (choose another place with CAIRN_DATA_DIR)", parent, err)
	}
	for _, d := range created {
		// MkdirAll's modes are narrowed by the umask.
		if err := os.Chmod(d, perm); err != nil {
			return fmt.Errorf("chmod %s: %w", d, err)
		}
	}
	if !c.owner.switchTo {
		return nil
	}
	for d := parent; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return fmt.Errorf("check access to %s: %w", d, err)
		}
		if !searchable(fi, c.owner) {
			return fmt.Errorf("PostgreSQL runs as the %s user, which cannot enter %s (mode %v), so it cannot reach the data dir %s: chmod o+x %s (or 0755), or choose a data dir under /var/lib/cairn with CAIRN_DATA_DIR",
				c.owner.name, d, fi.Mode().Perm(), c.dataDir, d)
		}
		if filepath.Dir(d) == d {
			return nil
		}
	}
}

// searchable reports whether u may pass through directory fi. Supplementary groups are not
// considered because the tools run with the user's primary group only.
func searchable(fi fs.FileInfo, u osUser) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return true
	}
	perm := fi.Mode().Perm()
	switch {
	case int(st.Uid) == u.uid:
		return perm&0o100 != 0
	case int(st.Gid) == u.gid:
		return perm&0o010 != 0
	default:
		return perm&0o001 != 0
	}
}

func (c *Cluster) chown(path string) error {
	if !c.owner.switchTo {
		return nil
	}
	if err := os.Lchown(path, c.owner.uid, c.owner.gid); err != nil {
		return fmt.Errorf("give %s to the %s user: %w", path, c.owner.name, err)
	}
	return nil
}

// initialized reports whether cairn finished creating the cluster: the settings file is
// written last.
func (c *Cluster) initialized() bool {
	_, err := os.Stat(filepath.Join(c.dataDir, settingsFile))
	return err == nil
}

// initialize runs initdb and writes cairn's settings. When the data dir does not exist yet,
// initdb works in a scratch dir that is renamed into place at the end, so that an interrupted
// initialisation never leaves a half-made cluster where cairn would later find it. An existing
// empty dir (a mounted volume, say) is used in place.
func (c *Cluster) initialize(ctx context.Context) error {
	entries, err := os.ReadDir(c.dataDir)
	inPlace := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("read the data dir %s: %w (choose another with CAIRN_DATA_DIR)", c.dataDir, err)
	case slices.ContainsFunc(entries, func(e fs.DirEntry) bool { return e.Name() == "PG_VERSION" }):
		return fmt.Errorf("%s holds a PostgreSQL cluster that cairn did not finish creating (no %s): if it is left from an interrupted first start, remove it and cairn will create a new one; to use an existing server instead, set DATABASE_URL",
			c.dataDir, settingsFile)
	case len(entries) > 0:
		return fmt.Errorf("the data dir %s is not empty and holds no PostgreSQL cluster; empty it or choose another with CAIRN_DATA_DIR", c.dataDir)
	}

	target := c.dataDir
	if !inPlace {
		target = filepath.Join(c.parent(), "."+filepath.Base(c.dataDir)+".initdb")
		// Anything here is the scratch dir of an initialisation that was interrupted.
		if err := os.RemoveAll(target); err != nil {
			return fmt.Errorf("remove the leftover %s: %w", target, err)
		}
		if err := os.Mkdir(target, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", target, err)
		}
	}
	if err := c.chown(target); err != nil {
		return err
	}
	c.log.Info("pgcluster: creating a private PostgreSQL cluster", "data_dir", c.dataDir, "bin_dir", c.binDir, "superuser", c.settings.Superuser)
	started := time.Now()
	err = c.initdb(ctx, target)
	if err == nil {
		err = c.writeConfig(target)
	}
	if err == nil && !inPlace {
		if err = os.Rename(target, c.dataDir); err != nil {
			err = fmt.Errorf("move the new cluster into place: %w", err)
		}
	}
	if err != nil {
		if !inPlace {
			os.RemoveAll(target)
		}
		return err
	}
	c.log.Debug("pgcluster: cluster created", "data_dir", c.dataDir, "took", time.Since(started).Round(time.Millisecond))
	return nil
}

// initdb creates the cluster. Local (socket) connections are trusted: that is safe only because
// the server listens on no TCP address and its socket dir is 0700, so only the cluster's OS user
// (and root) can connect; TCP is rejected outright in case someone enables it later.
func (c *Cluster) initdb(ctx context.Context, dir string) error {
	args := []string{"-D", dir, "-U", c.settings.Superuser, "--auth-local=trust", "--auth-host=reject", "-E", "UTF8"}
	out, err := c.run(ctx, false, "initdb", append(args, "--locale=C.UTF-8")...)
	if err != nil && ctx.Err() == nil && strings.Contains(out, "locale") {
		// Older C libraries have no C.UTF-8; initdb removed what it made, so try again.
		c.log.Info("pgcluster: locale C.UTF-8 is not available; creating the cluster with locale C", "initdb_output", out)
		out, err = c.run(ctx, false, "initdb", append(args, "--locale=C")...)
	}
	if err != nil {
		return fmt.Errorf("initdb for %s: %w\n%s\n(fix the cause above, choose another data dir with CAIRN_DATA_DIR, or set DATABASE_URL to use an existing server)", c.dataDir, err, out)
	}
	return nil
}

// writeConfig records cairn's settings in the new cluster. cairn passes the same settings on the
// server's command line at every start, so that they hold even if the files are edited; the
// conf file makes a server started by hand (pg_ctl start -D ...) behave the same.
func (c *Cluster) writeConfig(dir string) error {
	conf := fmt.Sprintf(`# Written by cairn when it created this cluster. cairn passes the same settings on the
# server's command line whenever it starts it, so editing them here has no effect then.
listen_addresses = ''
unix_socket_directories = %s
unix_socket_permissions = 0700
port = %d
`, confQuote(c.settings.SocketDir), c.settings.Port)
	if err := c.writeFile(filepath.Join(dir, confFile), []byte(conf)); err != nil {
		return err
	}
	mainConf := filepath.Join(dir, "postgresql.conf")
	f, err := os.OpenFile(mainConf, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("add cairn's settings to %s: %w", mainConf, err)
	}
	_, err = f.WriteString("\n# Added by cairn: the settings of its private cluster (unix socket only).\ninclude '" + confFile + "'\n")
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("add cairn's settings to %s: %w", mainConf, err)
	}
	data, err := json.MarshalIndent(c.settings, "", "  ")
	if err != nil {
		return err
	}
	// Written last: its presence means the cluster is complete.
	return c.writeFile(filepath.Join(dir, settingsFile), append(data, '\n'))
}

// writeFile writes a file into the data dir atomically, owned by the cluster's user.
func (c *Cluster) writeFile(path string, data []byte) error {
	tmp := path + ".tmp"
	err := os.WriteFile(tmp, data, 0o600)
	if err == nil {
		err = c.chown(tmp)
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func confQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// shellQuote quotes for /bin/sh, which pg_ctl hands the server options to.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// serverAlive reports whether postmaster.pid names a live server.
func (c *Cluster) serverAlive() bool {
	pf, ok := readPIDFile(c.dataDir)
	return ok && processState(pf.pid) == procAlive
}

// ensureServer starts the server unless it runs.
func (c *Cluster) ensureServer(ctx context.Context) error {
	if pf, ok := readPIDFile(c.dataDir); ok {
		switch processState(pf.pid) {
		case procAlive:
			return nil
		case procZombie, procForeign:
			if err := c.clearStaleLocks(pf); err != nil {
				return err
			}
		case procGone:
			// PostgreSQL itself replaces a lock file whose process is gone.
		}
	}
	return c.startServer(ctx)
}

func (c *Cluster) startServer(ctx context.Context) error {
	if err := c.checkVersion(ctx); err != nil {
		return err
	}
	if err := c.ensureSocketDir(); err != nil {
		return err
	}
	if err := c.prepareLog(); err != nil {
		return err
	}
	opts := fmt.Sprintf("-c listen_addresses='' -c unix_socket_permissions=0700 -k %s -p %d",
		shellQuote(c.settings.SocketDir), c.settings.Port)
	for attempt := 1; ; attempt++ {
		offset := fileSize(c.LogPath())
		c.log.Info("pgcluster: starting PostgreSQL", "data_dir", c.dataDir, "socket_dir", c.settings.SocketDir, "log", c.LogPath())
		out, err := c.run(ctx, true, "pg_ctl", "start", "-w", "-t", pgCtlTimeout, "-D", c.dataDir, "-l", c.LogPath(), "-o", opts)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("start PostgreSQL in %s: %w", c.dataDir, ctx.Err())
		}
		// Just after a crash the old server's processes may still be exiting while holding its
		// shared memory; PostgreSQL refuses to start until they are gone.
		if attempt < 20 && strings.Contains(readFrom(c.LogPath(), offset, 64<<10), "pre-existing shared memory block") {
			select {
			case <-ctx.Done():
			case <-time.After(250 * time.Millisecond):
			}
			continue
		}
		return fmt.Errorf("start PostgreSQL in %s: %w\n%s\nlast lines of %s:\n%s\n(fix the cause reported above, or set DATABASE_URL to use an existing server)",
			c.dataDir, err, out, c.LogPath(), tailLines(c.LogPath(), 20))
	}
}

// checkVersion fails early, with the fix, when the binaries are of another major version than
// the cluster, instead of leaving the user to decode the server's refusal.
func (c *Cluster) checkVersion(ctx context.Context) error {
	want := dataDirMajor(c.dataDir)
	if want == "" {
		return nil
	}
	version, err := c.binaryVersion(ctx)
	if err != nil {
		return err
	}
	if got := majorOf(version); got != want {
		return fmt.Errorf("the cluster in %s was created by PostgreSQL %s, but the binaries in %s are PostgreSQL %s: install PostgreSQL %s's server (apt-get install postgresql-%s) or point CAIRN_PG_BINDIR at it, or upgrade the cluster with pg_upgrade",
			c.dataDir, want, c.binDir, version, want, want)
	}
	return nil
}

// binaryVersion returns the version of the server binaries, e.g. "15.20".
func (c *Cluster) binaryVersion(ctx context.Context) (string, error) {
	out, err := c.run(ctx, false, "postgres", "--version")
	// "postgres (PostgreSQL) 15.20 (Debian 15.20-1.pgdg120+1)"
	f := strings.Fields(out)
	if err != nil || len(f) < 3 {
		return "", fmt.Errorf("run %s --version: %v %s (reinstall the PostgreSQL server or set CAIRN_PG_BINDIR)", filepath.Join(c.binDir, "postgres"), err, out)
	}
	return f[2], nil
}

// majorOf returns the major version of "15.20" (15) or "9.6.24" (9.6).
func majorOf(version string) string {
	digits := strings.IndexFunc(version, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if digits >= 0 {
		version = version[:digits]
	}
	parts := strings.Split(version, ".")
	if n, err := strconv.Atoi(parts[0]); err == nil && n < 10 && len(parts) > 1 {
		return parts[0] + "." + parts[1]
	}
	return parts[0]
}

// ensureSocketDir makes sure the socket dir exists, belongs to the cluster's user and is 0700:
// with trust authentication, it is what keeps other users out. A dir under /tmp that someone
// else created is refused, as it could be a trap.
func (c *Cluster) ensureSocketDir() error {
	dir := c.settings.SocketDir
	err := os.Mkdir(dir, 0o700)
	if err == nil {
		if err := c.chown(dir); err != nil {
			return err
		}
		return os.Chmod(dir, 0o700)
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create the socket dir %s: %w", dir, err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return fmt.Errorf("check the socket dir %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("the socket dir %s is not a directory (%v); remove it and start again", dir, fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != c.owner.uid {
		return fmt.Errorf("the socket dir %s belongs to uid %d, not to %s (uid %d) whom the cluster runs as; someone else may have made it to intercept connections: remove it and start again",
			dir, st.Uid, c.owner.name, c.owner.uid)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("make the socket dir %s private: %w", dir, err)
		}
	}
	return nil
}

// prepareLog moves an oversized log aside and creates the log file as the cluster's user, who
// may not create files in the data dir's parent.
func (c *Cluster) prepareLog() error {
	path := c.LogPath()
	if fileSize(path) > logRotateSize {
		if err := os.Rename(path, path+".1"); err != nil {
			c.log.Warn("pgcluster: cannot move the server log aside", "log", path, "err", err)
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("create the server log %s: %w", path, err)
	}
	f.Close()
	return c.chown(path)
}

// connectDatabase connects to the cluster's database, creating it first when missing. In a fresh
// cluster it is certainly missing, and trying it first would only put a FATAL line in the log.
func (c *Cluster) connectDatabase(ctx context.Context, fresh bool) (*pgx.Conn, error) {
	if !fresh {
		conn, err := c.connect(ctx, c.database)
		if err == nil {
			return conn, nil
		}
		if !isCode(err, "3D000") { // invalid_catalog_name: no such database
			return nil, c.connectError(err)
		}
	}
	admin, err := c.connect(ctx, "postgres")
	if err != nil {
		return nil, c.connectError(err)
	}
	_, err = admin.Exec(ctx, fmt.Sprintf(createDatabaseSQL, pgx.Identifier{c.database}.Sanitize()))
	admin.Close(context.WithoutCancel(ctx))
	if err != nil && !isCode(err, "42P04") { // duplicate_database: someone else was quicker
		return nil, fmt.Errorf("create database %q in the cluster %s: %w", c.database, c.dataDir, err)
	}
	c.log.Info("pgcluster: created database", "database", c.database, "data_dir", c.dataDir)
	conn, err := c.connect(ctx, c.database)
	if err != nil {
		return nil, c.connectError(err)
	}
	return conn, nil
}

func (c *Cluster) connectError(err error) error {
	return fmt.Errorf("connect to the cluster's server on %s: %w\nlast lines of %s:\n%s\n(if another program holds the PID in %s, stop it or remove that file)",
		c.settings.SocketDir, err, c.LogPath(), tailLines(c.LogPath(), 20), filepath.Join(c.dataDir, "postmaster.pid"))
}

// connect opens a connection, waiting while the server is still starting or recovering.
func (c *Cluster) connect(ctx context.Context, database string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(c.connString(database))
	if err != nil {
		return nil, fmt.Errorf("parse connection string: %w", err)
	}
	cfg.RuntimeParams["application_name"] = "cairn-pgcluster"
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	for {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil || !isCode(err, "57P03") { // cannot_connect_now
			return conn, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func isCode(err error, code string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == code
}

// serverInfo returns the server's major.minor version and whether pgvector is available.
func serverInfo(ctx context.Context, conn *pgx.Conn) (version string, vector bool, err error) {
	var num int
	err = conn.QueryRow(ctx, serverInfoSQL).Scan(&num, &vector)
	if err != nil {
		return "", false, err
	}
	if num >= 100000 {
		return fmt.Sprintf("%d.%d", num/10000, num%10000), vector, nil
	}
	return fmt.Sprintf("%d.%d.%d", num/10000, num/100%100, num%100), vector, nil
}

// vectorFilesInstalled looks for pgvector's control file where the binaries' pg_config says
// extensions live; false when that cannot be told.
func (c *Cluster) vectorFilesInstalled(ctx context.Context) bool {
	if _, err := os.Stat(filepath.Join(c.binDir, "pg_config")); err != nil {
		return false
	}
	out, err := c.run(ctx, false, "pg_config", "--sharedir")
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(strings.TrimSpace(out), "extension", "vector.control"))
	return err == nil
}
