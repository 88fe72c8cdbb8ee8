package main

// The LangGraph leg (issue 12): CairnSaver, the checkpointer in clients/langgraph that talks to
// cairn over Streamable HTTP, beside the official PostgresSaver writing to the same PostgreSQL
// cluster, driven by clients/langgraph/bench/bench.mjs in one run: put and getTuple with one
// thread and with several at once, and the bytes a 200-step thread adds to all tables.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"
)

type lgLatency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	N   int     `json:"n"`
}

type lgSide struct {
	Put lgLatency `json:"put"`
	Get lgLatency `json:"get"`
}

type lgStorage struct {
	Bytes   int64            `json:"bytes"`
	PerStep float64          `json:"perStep"`
	Tables  map[string]int64 `json:"tables"` // growth by table
}

type lgResults struct {
	N           int                             `json:"n"`
	Steps       int                             `json:"steps"`
	Concurrency int                             `json:"concurrency"`
	One         map[string]lgSide               `json:"one"`
	Many        map[string]lgSide               `json:"many"`
	Storage     map[string]map[string]lgStorage `json:"storage"`
}

// benchLangGraph makes a database for cairn and one for PostgresSaver, serves the first with
// `cairn serve --transport http`, and runs the driver with the compiled saver.
func benchLangGraph(ctx context.Context, admin *pgx.Conn, bin string, n int) (*lgResults, error) {
	cc := admin.Config()
	urls := map[string]string{}
	for _, db := range []string{"cairn_lg", "langgraph_pg"} {
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)"); err != nil {
			return nil, err
		}
		if _, err := admin.Exec(ctx, "CREATE DATABASE "+db); err != nil {
			return nil, err
		}
		urls[db] = fmt.Sprintf("postgresql://%s@/%s?host=%s&port=%d", cc.User, db, cc.Host, cc.Port)
	}
	cairnURL := fmt.Sprintf("host=%s port=%d user=%s dbname=cairn_lg sslmode=disable", cc.Host, cc.Port, cc.User)
	if out, err := exec.Command(bin, "--log-level", "warn", "migrate", "--database-url", cairnURL).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("cairn migrate: %v\n%s", err, out)
	}
	base, srv, err := serveHTTP(ctx, bin, []string{"CAIRN_LOG_LEVEL=warn"}, "--no-migrate", "--database-url", cairnURL)
	if err != nil {
		return nil, err
	}
	defer stop(srv)

	dir, err := langGraphPackage()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	drv := exec.Command("node", "bench/bench.mjs")
	drv.Dir = dir
	drv.Env = append(os.Environ(), "CAIRN_URL="+base+"/mcp", "PG_URL="+urls["langgraph_pg"], "CAIRN_DB="+urls["cairn_lg"],
		fmt.Sprintf("N=%d", n))
	var out bytes.Buffer
	drv.Stdout, drv.Stderr = &out, os.Stderr
	if err := drv.Run(); err != nil {
		return nil, fmt.Errorf("langgraph driver: %w", err)
	}
	var r lgResults
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return nil, fmt.Errorf("langgraph driver's report %q: %w", out.String(), err)
	}
	return &r, nil
}

// langGraphPackage copies clients/langgraph beside its installed packages (scripts/npm-cache.sh)
// and compiles the saver into dist there.
func langGraphPackage() (string, error) {
	var out bytes.Buffer
	cmd := exec.Command("scripts/npm-cache.sh", "clients/langgraph")
	cmd.Stdout, cmd.Stderr = &out, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("install clients/langgraph's packages (run from the repository's root, as make does): %w", err)
	}
	dir, err := os.MkdirTemp("", "cairn-bench-langgraph-")
	if err != nil {
		return "", err
	}
	for _, f := range []string{"package.json", "tsconfig.json", "src", "bench"} {
		if b, err := exec.Command("cp", "-R", filepath.Join("clients/langgraph", f), filepath.Join(dir, f)).CombinedOutput(); err != nil {
			return "", fmt.Errorf("copy %s: %v\n%s", f, err, b)
		}
	}
	if err := os.Symlink(filepath.Join(strings.TrimSpace(out.String()), "node_modules"), filepath.Join(dir, "node_modules")); err != nil {
		return "", err
	}
	if b, err := exec.Command("node", filepath.Join(dir, "node_modules/typescript/bin/tsc"), "-p", filepath.Join(dir, "tsconfig.json")).CombinedOutput(); err != nil {
		return "", fmt.Errorf("tsc: %v\n%s", err, b)
	}
	return dir, nil
}

func printLangGraph(w io.Writer, r *lgResults) {
	row := func(what string, c, p lgLatency) {
		fmt.Fprintf(w, "| %s | %.2f / %.2f ms | %.2f / %.2f ms | %.2fx / %.2fx | at most 0.5x |\n", what, c.P50, c.P95, p.P50, p.P95, c.P50/p.P50, c.P95/p.P95)
	}
	fmt.Fprintf(w, "\n| LangGraph checkpointer, p50 / p95 | CairnSaver (MCP, Streamable HTTP) | PostgresSaver | ratio | goal |\n|---|---|---|---|---|\n")
	row("`put`, 1 thread", r.One["cairn"].Put, r.One["postgres"].Put)
	row("`getTuple`, 1 thread", r.One["cairn"].Get, r.One["postgres"].Get)
	row(fmt.Sprintf("`put`, %d threads at once", r.Concurrency), r.Many["cairn"].Put, r.Many["postgres"].Put)
	row(fmt.Sprintf("`getTuple`, %d threads at once", r.Concurrency), r.Many["cairn"].Get, r.Many["postgres"].Get)
	fmt.Fprintf(w, "\n| storage, %d steps, growth of all tables, no VACUUM | CairnSaver | PostgresSaver | goal |\n|---|---|---|---|\n", r.Steps)
	for _, k := range []struct{ key, what string }{{"messages", "a message list growing by one ~1 KB message a step"}, {"keys50", "50 keys of ~1 KB, one changed a step"}} {
		s := r.Storage[k.key]
		fmt.Fprintf(w, "| %s, per step | %.2f KB | %.2f KB | under 5 KB, and under PostgresSaver |\n", k.what, s["cairn"].PerStep/1000, s["postgres"].PerStep/1000)
		for _, side := range []string{"cairn", "postgres"} {
			var parts []string
			for t, b := range s[side].Tables {
				parts = append(parts, fmt.Sprintf("%s %.2f", t, float64(b)/1000/float64(r.Steps)))
			}
			sort.Strings(parts)
			fmt.Fprintf(w, "| … %s by table, KB per step | %s | | |\n", side, strings.Join(parts, ", "))
		}
	}
}
