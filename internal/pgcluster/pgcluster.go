// Package pgcluster runs cairn's private PostgreSQL cluster. When the user configures no
// database, cairn creates a cluster with the PostgreSQL server binaries already on the machine,
// starts it listening on a unix socket only, and creates its database in it.
//
// Several cairn processes may share one cluster: starting and stopping are serialised by a lock
// file beside the data dir, and the server outlives the process that started it. Beside the data
// dir <parent>/<name> live <name>.lock, the server log <name>.log and the socket dir <name>.run,
// so the default data dir ~/.local/share/cairn/postgres gives postgres.log and so on.
package pgcluster

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
)

// Options configure the private cluster; zero values are the documented defaults.
type Options struct {
	// DataDir is the cluster's data directory. Default: $CAIRN_DATA_DIR, else
	// $XDG_DATA_HOME/cairn/postgres, else ~/.local/share/cairn/postgres; when running as root
	// (and CAIRN_DATA_DIR is unset): /var/lib/cairn/postgres.
	DataDir string
	// BinDir holds the PostgreSQL server binaries (initdb, pg_ctl, postgres). Default:
	// $CAIRN_PG_BINDIR, else the binaries of the data dir's PostgreSQL major version under
	// /usr/lib/postgresql when the cluster exists, else `pg_config --bindir` if it has initdb,
	// else the newest /usr/lib/postgresql/*/bin, else initdb on PATH.
	BinDir string
	// Database is created in the cluster and is the one ConnString names; default "cairn".
	Database string
	// Logger receives everything the package and the PostgreSQL tools report; default
	// slog.Default(). Nothing is ever written to stdout, which belongs to the MCP stdio protocol.
	Logger *slog.Logger
}

// DefaultDatabase is the database created when Options.Database is empty.
const DefaultDatabase = "cairn"

const (
	defaultPort = 5432
	// maxSocketPath is the longest unix socket path Linux accepts: sun_path is 108 bytes with
	// the terminating NUL.
	maxSocketPath = 107
	// settingsFile records, inside the data dir, how cairn set the cluster up, so that every
	// process computes the same ConnString. It is written last during initialisation and so
	// also marks the cluster as complete.
	settingsFile = "cairn-cluster.json"
	// confFile holds the server settings cairn chose; postgresql.conf includes it.
	confFile = "cairn.conf"
)

// Cluster is cairn's private PostgreSQL cluster in one data dir. Its methods may be called from
// several goroutines and processes at once.
type Cluster struct {
	dataDir  string
	binDir   string
	database string
	log      *slog.Logger
	owner    osUser
	settings settings
}

// settings are what cairn chose for the cluster when it created it; they are stored in
// settingsFile.
type settings struct {
	SocketDir string `json:"socket_dir"`
	Port      int    `json:"port"`
	Superuser string `json:"superuser"`
}

// osUser is the OS user the server runs as.
type osUser struct {
	name     string
	uid, gid int
	// switchTo is set when cairn runs as root: PostgreSQL refuses to run as root, so the tools
	// and the server run as this user instead.
	switchTo bool
}

// Status describes the cluster as found on disk and, when it runs, as the server reports it.
type Status struct {
	DataDir     string
	SocketDir   string
	Initialized bool // the data dir holds a cluster cairn created completely
	Running     bool
	PID         int    // the postmaster's PID when running
	Version     string // server major.minor; when not running, that of the binaries in BinDir
	Database    string
	ConnString  string
	// VectorAvailable reports whether pgvector is installed for the server; when the server is
	// not running, whether its files are present in the binaries' share dir.
	VectorAvailable bool
}

// New resolves the defaults and finds the server binaries; it creates nothing on disk. It fails
// with *MissingBinariesError when no usable binaries are found.
func New(opts Options) (*Cluster, error) {
	c := &Cluster{database: opts.Database, log: opts.Logger}
	if c.log == nil {
		c.log = slog.Default()
	}
	if c.database == "" {
		c.database = DefaultDatabase
	}
	if len(c.database) > 63 || strings.ContainsRune(c.database, 0) {
		return nil, fmt.Errorf("database name %q: PostgreSQL names are at most 63 bytes without NUL; choose a shorter name", c.database)
	}

	root := os.Geteuid() == 0
	var err error
	c.owner, err = clusterUser(root, "postgres")
	if err != nil {
		return nil, err
	}
	if c.dataDir, err = dataDir(opts.DataDir, root); err != nil {
		return nil, err
	}
	if c.binDir, err = findBinDir(opts.BinDir, c.dataDir); err != nil {
		return nil, err
	}

	c.settings = c.readSettings()
	if c.settings.SocketDir == "" {
		var fallback bool
		c.settings = settings{Port: defaultPort, Superuser: c.owner.name}
		c.settings.SocketDir, fallback = socketDirFor(c.dataDir, defaultPort)
		if fallback {
			c.log.Debug("pgcluster: socket path beside the data dir is too long for a unix socket; using a dir under /tmp",
				"data_dir", c.dataDir, "socket_dir", c.settings.SocketDir)
		}
	}
	return c, nil
}

// clusterUser decides whom the server runs as: the current user, or when running as root the
// user called rootAlternative.
func clusterUser(root bool, rootAlternative string) (osUser, error) {
	if root {
		u, err := user.Lookup(rootAlternative)
		if err != nil {
			return osUser{}, fmt.Errorf("PostgreSQL will not run as root; create a '%s' user (useradd --system %s) or run cairn as an ordinary user, or point DATABASE_URL at an existing server (looking up user %s: %w)",
				rootAlternative, rootAlternative, rootAlternative, err)
		}
		uid, err1 := strconv.Atoi(u.Uid)
		gid, err2 := strconv.Atoi(u.Gid)
		if err := errors.Join(err1, err2); err != nil {
			return osUser{}, fmt.Errorf("user %s has a non-numeric uid/gid (%s/%s): %w", rootAlternative, u.Uid, u.Gid, err)
		}
		return osUser{name: u.Username, uid: uid, gid: gid, switchTo: true}, nil
	}
	name := ""
	if u, err := user.Current(); err == nil {
		name = u.Username
	} else if name = os.Getenv("USER"); name == "" {
		return osUser{}, fmt.Errorf("cannot tell the name of the current OS user (uid %d), which PostgreSQL needs: add it to /etc/passwd or set USER, or set DATABASE_URL to use an existing server: %w", os.Getuid(), err)
	}
	return osUser{name: name, uid: os.Getuid(), gid: os.Getgid()}, nil
}

func dataDir(explicit string, root bool) (string, error) {
	dir := explicit
	switch {
	case dir != "":
	case os.Getenv("CAIRN_DATA_DIR") != "":
		dir = os.Getenv("CAIRN_DATA_DIR")
	case root:
		dir = "/var/lib/cairn/postgres"
	case filepath.IsAbs(os.Getenv("XDG_DATA_HOME")):
		// The XDG spec says relative values are invalid and to be ignored.
		dir = filepath.Join(os.Getenv("XDG_DATA_HOME"), "cairn", "postgres")
	default:
		home, err := os.UserHomeDir()
		if err != nil {
			return "", fmt.Errorf("no place for the PostgreSQL data dir (set CAIRN_DATA_DIR): %w", err)
		}
		dir = filepath.Join(home, ".local", "share", "cairn", "postgres")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("data dir %q: %w", dir, err)
	}
	// pg_ctl hands the data dir and log path to /bin/sh inside double quotes, where these
	// characters would be interpreted.
	if strings.ContainsAny(abs, "\"$`\\\n") {
		return "", fmt.Errorf("data dir %q contains a character pg_ctl cannot pass through the shell (\" $ ` \\ or newline); choose another path (CAIRN_DATA_DIR)", abs)
	}
	if filepath.Dir(abs) == abs {
		return "", fmt.Errorf("data dir %q: the data dir needs a parent dir of its own for the lock, log and socket; choose another path (CAIRN_DATA_DIR)", abs)
	}
	return abs, nil
}

// socketDirFor puts the socket beside the data dir, unless that path is too long for a unix
// socket; then it uses a dir under /tmp named after the data dir, so that it stays the same
// across processes.
func socketDirFor(dataDir string, port int) (dir string, fallback bool) {
	dir = dataDir + ".run"
	if len(socketPath(dir, port)) <= maxSocketPath {
		return dir, false
	}
	sum := sha256.Sum256([]byte(dataDir))
	return "/tmp/cairn-" + hex.EncodeToString(sum[:6]), true
}

func socketPath(dir string, port int) string {
	return filepath.Join(dir, ".s.PGSQL."+strconv.Itoa(port))
}

// readSettings returns the stored settings, or zero ones when the cluster is not (completely)
// created yet.
func (c *Cluster) readSettings() settings {
	var s settings
	data, err := os.ReadFile(filepath.Join(c.dataDir, settingsFile))
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			c.log.Warn("pgcluster: cannot read the cluster settings; using the defaults", "err", err)
		}
		return settings{}
	}
	if err := json.Unmarshal(data, &s); err != nil || s.SocketDir == "" || s.Port == 0 || s.Superuser == "" {
		c.log.Warn("pgcluster: cluster settings file is damaged; using the defaults",
			"file", filepath.Join(c.dataDir, settingsFile), "err", err)
		return settings{}
	}
	return s
}

// DataDir returns the cluster's data directory.
func (c *Cluster) DataDir() string { return c.dataDir }

// ConnString returns a libpq key/value connection string for the database over the unix socket.
// No password is needed: the socket dir is private to the cluster's OS user.
func (c *Cluster) ConnString() string {
	return c.connString(c.database)
}

func (c *Cluster) connString(database string) string {
	return fmt.Sprintf("host=%s port=%d dbname=%s user=%s sslmode=disable",
		quoteConnValue(c.settings.SocketDir), c.settings.Port, quoteConnValue(database), quoteConnValue(c.settings.Superuser))
}

// quoteConnValue quotes a libpq key/value value when it needs it.
func quoteConnValue(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

func (c *Cluster) parent() string   { return filepath.Dir(c.dataDir) }
func (c *Cluster) lockPath() string { return c.dataDir + ".lock" }

// LogPath returns the server log file, to which pg_ctl appends.
func (c *Cluster) LogPath() string { return c.dataDir + ".log" }

// WriteText writes the status for people, one fact a line; the server's facts only when it runs.
func (st Status) WriteText(w io.Writer) {
	fmt.Fprintf(w, "data dir:     %s\ninitialized:  %t\nrunning:      %t\n", st.DataDir, st.Initialized, st.Running)
	if st.Running {
		fmt.Fprintf(w, "pid:          %d\nversion:      %s\npgvector:     %t\nconnect:      %s\n", st.PID, st.Version, st.VectorAvailable, st.ConnString)
	}
}
