package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// run runs one of the PostgreSQL tools as the cluster's OS user and returns its combined output,
// which is captured rather than inherited because stdout belongs to the MCP protocol. detach
// puts the tool in a session of its own, so that the server it starts does not get the
// terminal's Ctrl-C meant for cairn.
func (c *Cluster) run(ctx context.Context, detach bool, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(c.binDir, name), args...)
	// The cluster user may not be allowed into cairn's working dir, and the tools complain.
	cmd.Dir = "/"
	cmd.Env = childEnv(os.Environ())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: detach}
	if c.owner.switchTo {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(c.owner.uid), Gid: uint32(c.owner.gid)}
	}
	// On cancellation, SIGTERM lets initdb remove what it made; SIGKILL follows after
	// WaitDelay. WaitDelay also keeps Wait from hanging should anything the tool spawned hold
	// our pipe open (the server's output goes to its log file, so that is only a guard).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 5 * time.Second
	started := time.Now()
	err := cmd.Run()
	output := strings.TrimSpace(out.String())
	c.log.Debug("pgcluster: ran "+name, "args", args, "took", time.Since(started).Round(time.Millisecond), "output", output, "err", err)
	return output, err
}

// childEnv drops the variables that would change what the tools and the server do (PGDATA,
// PGPORT, PGOPTIONS, ...) and asks for English messages, which initdb's locale fallback reads.
func childEnv(env []string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "PG") || name == "LC_ALL" || name == "LC_MESSAGES" || name == "LANGUAGE" {
			continue
		}
		out = append(out, kv)
	}
	return append(out, "LC_MESSAGES=C")
}

// pidFile is what the server records in postmaster.pid.
type pidFile struct {
	pid       int
	port      int
	socketDir string
	shmID     int // the System V segment the server uses to detect its own leftover processes; -1 if unknown
}

func readPIDFile(dataDir string) (pidFile, bool) {
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return pidFile{}, false
	}
	lines := strings.Split(string(data), "\n")
	line := func(i int) string {
		if i < len(lines) {
			return strings.TrimSpace(lines[i])
		}
		return ""
	}
	pf := pidFile{shmID: -1, socketDir: line(4)}
	pf.pid, _ = strconv.Atoi(line(0))
	pf.port, _ = strconv.Atoi(line(3))
	if f := strings.Fields(line(6)); len(f) == 2 {
		if id, err := strconv.Atoi(f[1]); err == nil {
			pf.shmID = id
		}
	}
	return pf, pf.pid > 0
}

type procState int

const (
	procGone    procState = iota
	procAlive             // a live postgres process
	procZombie            // dead but not reaped: kill(pid, 0) still succeeds
	procForeign           // the PID now belongs to some other program
)

// processState tells whether pid is a live server. A zombie matters because a container's init
// (or cairn itself as PID 1) may never reap a killed postmaster, and PostgreSQL then refuses to
// start, taking the zombie for a running server.
func processState(pid int) procState {
	if pid <= 0 {
		return procGone
	}
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return procGone
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, fs.ErrNotExist) && dirExists("/proc/self") {
		return procGone
	}
	if err != nil {
		return procAlive // no /proc to ask: trust kill
	}
	// "pid (comm) state ...", where comm may itself contain ") ".
	s := string(stat)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open || closing+2 >= len(s) {
		return procAlive
	}
	if state := s[closing+2]; state == 'Z' || state == 'X' {
		return procZombie
	}
	if comm := s[open+1 : closing]; comm != "postgres" && comm != "postmaster" {
		return procForeign
	}
	return procAlive
}

func dirExists(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// clearStaleLocks removes the lock files of a server that is gone but whose PID still looks
// alive to PostgreSQL (a zombie, or a PID reused by another program). It first makes sure no
// process of the old server is still attached to its shared memory, which is the check
// PostgreSQL itself would have made with the removed file.
func (c *Cluster) clearStaleLocks(pf pidFile) error {
	pidPath := filepath.Join(c.dataDir, "postmaster.pid")
	if pf.shmID >= 0 {
		attached, known := shmAttached(pf.shmID)
		if !known {
			return fmt.Errorf("%s names PID %d, which is no longer a running server, but cairn cannot check that its processes are gone (no /proc/sysvipc/shm); when no postgres process of %s is left, remove that file and start again",
				pidPath, pf.pid, c.dataDir)
		}
		if attached > 0 {
			return fmt.Errorf("the previous server of %s (PID %d) is gone but %d of its processes are still attached to its shared memory (id %d); wait for them to exit or kill them, then start again",
				c.dataDir, pf.pid, attached, pf.shmID)
		}
	}
	c.log.Info("pgcluster: removing the lock files of a server that is gone", "pid", pf.pid, "data_dir", c.dataDir)
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", pidPath, err)
	}
	socketDir, port := pf.socketDir, pf.port
	if socketDir == "" || port == 0 {
		socketDir, port = c.settings.SocketDir, c.settings.Port
	}
	lockPath := socketPath(socketDir, port) + ".lock"
	if data, err := os.ReadFile(lockPath); err == nil {
		first, _, _ := strings.Cut(string(data), "\n")
		if pid, _ := strconv.Atoi(strings.TrimSpace(first)); pid == pf.pid {
			if err := os.Remove(lockPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("remove stale %s: %w", lockPath, err)
			}
		}
	}
	return nil
}

// shmAttached returns how many processes are attached to System V segment id (0 when the segment
// is gone), and whether it could tell.
func shmAttached(id int) (attached int, known bool) {
	data, err := os.ReadFile("/proc/sysvipc/shm")
	if err != nil {
		return 0, false
	}
	lines := strings.Split(string(data), "\n")
	if len(lines) == 0 {
		return 0, false
	}
	header := strings.Fields(lines[0])
	idCol, attachCol := slices.Index(header, "shmid"), slices.Index(header, "nattch")
	if idCol < 0 || attachCol < 0 {
		return 0, false
	}
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= max(idCol, attachCol) || f[idCol] != strconv.Itoa(id) {
			continue
		}
		n, err := strconv.Atoi(f[attachCol])
		return n, err == nil
	}
	return 0, true
}

// readFrom returns the file's content from offset, at most the last limit bytes of it.
func readFrom(path string, offset, limit int64) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	offset = max(offset, fi.Size()-limit, 0)
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	data, _ := io.ReadAll(io.LimitReader(f, limit))
	return string(data)
}

// tailLines returns the last n lines of the file.
func tailLines(path string, n int) string {
	lines := strings.Split(strings.TrimRight(readFrom(path, 0, 64<<10), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}
