package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Where a Go server's CPU goes, by what is on the stack of each sample. A sample counts for
// every category one of its frames matches, so the shares overlap (JSON inside the SDK counts
// for both); "in the kernel" is by the sampled frame alone.
var profileCategories = []struct {
	name    string
	matches []string
}{
	{kernelShare, nil}, // by the sampled frame: see perfShares
	{"garbage collector (mark workers, assists, sweeping)", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep", "runtime.bgscavenge"}},
	{"allocation (runtime.mallocgc)", []string{"runtime.mallocgc"}},
	{"JSON encoding and decoding", []string{"encoding/json.", "github.com/segmentio/encoding"}},
	{"go-sdk (JSON-RPC, transports, tool calls)", []string{"github.com/modelcontextprotocol/go-sdk"}},
	{"JSON Schema validation", []string{"github.com/google/jsonschema-go"}},
	{"pgx", []string{"github.com/jackc/"}},
	{"SQL parser (pg_query, cgo)", []string{"pg_query", "base_yyparse", "raw_parser", "protobuf_c"}},
	{"cairn's own packages", []string{"github.com/cairn-mcp/cairn"}},
	{"River (background jobs)", []string{"github.com/riverqueue"}},
	{"net/http", []string{"net/http."}},
	{"scheduler, idle spinning, sysmon", []string{"runtime.findRunnable", "runtime.sysmon", "runtime.schedule"}},
}

// profile runs a server's loads once more, unmeasured, with `perf record` attached to the server
// process (cpu-clock samples with frame-pointer call chains, which Go keeps), and prints where
// the CPU went. perf slows what it watches: these runs are not timed.
func (r *peersRun) profile(ctx context.Context, s server) error {
	if _, err := exec.LookPath("perf"); err != nil {
		return fmt.Errorf("perf is not installed (apt-get install linux-perf)")
	}
	if err := os.MkdirAll(r.o.profileDir, 0o755); err != nil {
		return err
	}
	var loads, files []string
	attach := func(pid int, what string) func() error {
		out := filepath.Join(r.o.profileDir, s.name+"-"+what+".perf.data")
		cmd := exec.Command("perf", "record", "-q", "-e", "cpu-clock", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", out)
		cmd.Stderr = r.drv.log
		if err := cmd.Start(); err != nil {
			return func() error { return err }
		}
		time.Sleep(300 * time.Millisecond) // let perf attach before the load starts
		loads, files = append(loads, what), append(files, out)
		return func() error {
			// perf writes its file on SIGINT and then reports the signal as its exit: judge it
			// by the file.
			_ = cmd.Process.Signal(syscall.SIGINT)
			err := cmd.Wait()
			if st, serr := os.Stat(out); serr != nil || st.Size() == 0 {
				return fmt.Errorf("perf record: %v", err)
			}
			return nil
		}
	}
	if _, err := r.measure(ctx, s, attach); err != nil {
		return err
	}
	shares := make([]map[string]float64, len(files))
	tops := make([][]string, len(files))
	counts := make([]int, len(files))
	for i, f := range files {
		var err error
		if shares[i], tops[i], counts[i], err = perfShares(f); err != nil {
			return err
		}
	}
	fmt.Printf("\n### Where %s's CPU goes (perf, cpu-clock at 999 Hz; files in %s)\n\n", s.name, r.o.profileDir)
	fmt.Printf("| share of samples with … on the stack | %s |\n|---|%s\n", strings.Join(loads, " | "), strings.Repeat("---|", len(loads)))
	fmt.Printf("| samples |")
	for _, n := range counts {
		fmt.Printf(" %d |", n)
	}
	fmt.Println()
	for _, c := range profileCategories {
		fmt.Printf("| %s |", c.name)
		for i := range files {
			fmt.Printf(" %.1f%% |", 100*shares[i][c.name])
		}
		fmt.Println()
	}
	for i, l := range loads {
		fmt.Printf("\nHottest functions (self), %s: %s\n", l, strings.Join(tops[i], ", "))
	}
	return nil
}

const kernelShare = "in the kernel (syscalls, page faults; the sampled frame)"

// perfShares reads a perf.data file's call chains: each category's share of the samples, the
// ten functions with the most self samples, and the number of samples.
func perfShares(file string) (map[string]float64, []string, int, error) {
	out, err := exec.Command("perf", "script", "-i", file, "-F", "ip,sym").Output()
	if err != nil {
		return nil, nil, 0, fmt.Errorf("perf script %s: %w", file, err)
	}
	hits := map[string]int{}
	self := map[string]int{}
	n := 0
	// Samples are blocks of frames, the sampled one first, separated by blank lines; a frame
	// is "ADDRESS SYMBOL".
	var frames []string
	flush := func() {
		if len(frames) == 0 {
			return
		}
		n++
		leaf := strings.Fields(frames[0])
		if len(leaf) > 1 {
			self[leaf[1]]++
		}
		if strings.HasPrefix(leaf[0], "ffffffff") {
			hits[kernelShare]++
		}
		for _, c := range profileCategories[1:] {
			if slices.ContainsFunc(frames, func(fr string) bool {
				return slices.ContainsFunc(c.matches, func(m string) bool { return strings.Contains(fr, m) })
			}) {
				hits[c.name]++
			}
		}
		frames = frames[:0]
	}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			flush()
			continue
		}
		frames = append(frames, line)
	}
	flush()
	shares := map[string]float64{}
	for k, v := range hits {
		shares[k] = float64(v) / float64(max(n, 1))
	}
	names := make([]string, 0, len(self))
	for k := range self {
		names = append(names, k)
	}
	slices.SortFunc(names, func(a, b string) int { return self[b] - self[a] })
	var top []string
	for _, k := range names[:min(10, len(names))] {
		top = append(top, fmt.Sprintf("%s %.1f%%", k, 100*float64(self[k])/float64(max(n, 1))))
	}
	return shares, top, n, nil
}
