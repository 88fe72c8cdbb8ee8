package main

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// A metric of the report: how to read it from one round's figures, and its unit.
type metric struct {
	name   string
	get    func(figures) float64 // 0: not measured
	format func(float64) string
	higher bool // higher is better (calls/s)
	// pooled, when set, gives the value from all rounds' samples together (cold starts: a few
	// a round, the median of all of them).
	pooled func(figures) []float64
}

func msOf(d time.Duration) float64 { return float64(d) / 1e6 }

func fmtMS(v float64) string { return fmt.Sprintf("%.3f ms", v) }
func fmtMB(v float64) string { return fmt.Sprintf("%.1f MB", v/1024) }
func fmtN(v float64) string  { return fmt.Sprintf("%.2f", v) }
func fmtBytes(v float64) string {
	if v < 10000 {
		return fmt.Sprintf("%.0f B", v)
	}
	return fmt.Sprintf("%.0f KB", v/1000)
}
func fmtRate(v float64) string {
	return fmt.Sprintf("%.0f", v)
}

// medianOf is the median of the rounds' values, the mean of the middle two for an even count;
// zeros (not measured) are left out.
func medianOf(vals []float64) float64 {
	vals = slices.DeleteFunc(slices.Clone(vals), func(v float64) bool { return v == 0 })
	if len(vals) == 0 {
		return 0
	}
	slices.Sort(vals)
	n := len(vals)
	if n%2 == 1 {
		return vals[n/2]
	}
	return (vals[n/2-1] + vals[n/2]) / 2
}

func (m metric) median(fs []figures) float64 {
	if m.pooled != nil {
		var all []float64
		for _, f := range fs {
			all = append(all, m.pooled(f)...)
		}
		return medianOf(all)
	}
	vals := make([]float64, len(fs))
	for i, f := range fs {
		vals[i] = m.get(f)
	}
	return medianOf(vals)
}

// best is the best median among the peers proper, and whose it is.
func (m metric) best(all map[string][]figures) (float64, string) {
	best, who := 0.0, ""
	for _, p := range realPeers {
		v := m.median(all[p])
		if v == 0 {
			continue
		}
		if who == "" || (m.higher && v > best) || (!m.higher && v < best) {
			best, who = v, p
		}
	}
	return best, who
}

func ratioCell(a, b float64) string {
	if a == 0 || b == 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", a/b)
}

func printPeers(w io.Writer, o peersOpts, all map[string][]figures, listErr string) {
	calls := o.warm + o.point + o.thousand
	stdio := []metric{
		{name: "point lookup, p50", get: func(f figures) float64 { return msOf(f.point.lat.median) }, format: fmtMS},
		{name: "point lookup, p95", get: func(f figures) float64 { return msOf(f.point.lat.p95) }, format: fmtMS},
		{name: "1,000 rows, p50", get: func(f figures) float64 { return msOf(f.thousand.lat.median) }, format: fmtMS},
		{name: "1,000 rows, p95", get: func(f figures) float64 { return msOf(f.thousand.lat.p95) }, format: fmtMS},
		{name: fmt.Sprintf("spawn → initialize answered, median of %d (cairn: `--no-migrate`)", o.starts*o.rounds), pooled: func(f figures) []float64 { return f.starts }, format: fmtMS},
		{name: "cairn spawn → initialize with the migration check", pooled: func(f figures) []float64 { return f.startsMigrate }, format: fmtMS},
		{name: fmt.Sprintf("RSS after %d calls (process tree, VmRSS)", calls), get: func(f figures) float64 { return float64(f.rss) }, format: fmtMB},
		{name: "… of which anonymous (heap, stacks)", get: func(f figures) float64 { return float64(f.rssAnon) }, format: fmtMB},
		{name: "server CPU per point call", get: func(f figures) float64 { return msOf(f.point.srvCPU) }, format: fmtMS},
		{name: "server CPU per 1,000-row call", get: func(f figures) float64 { return msOf(f.thousand.srvCPU) }, format: fmtMS},
		{name: "PostgreSQL statements per point call", get: func(f figures) float64 { return f.point.stmts }, format: fmtN},
		{name: "PostgreSQL CPU per point call", get: func(f figures) float64 { return msOf(f.point.pgCPU) }, format: fmtMS},
		{name: "PostgreSQL statements per 1,000-row call", get: func(f figures) float64 { return f.thousand.stmts }, format: fmtN},
		{name: "PostgreSQL CPU per 1,000-row call", get: func(f figures) float64 { return msOf(f.thousand.pgCPU) }, format: fmtMS},
		{name: "tool result as JSON, point lookup", get: func(f figures) float64 { return float64(f.point.bytes) }, format: fmtBytes},
		{name: "tool result as JSON, 1,000 rows", get: func(f figures) float64 { return float64(f.thousand.bytes) }, format: fmtBytes},
	}
	httpMetrics := []metric{
		{name: "calls/s", get: func(f figures) float64 { return f.httpRate }, format: fmtRate, higher: true},
		{name: "latency p50", get: func(f figures) float64 { return msOf(f.http.lat.median) }, format: fmtMS},
		{name: "server CPU per call", get: func(f figures) float64 { return msOf(f.http.srvCPU) }, format: fmtMS},
		{name: "PostgreSQL CPU per call", get: func(f figures) float64 { return msOf(f.http.pgCPU) }, format: fmtMS},
		{name: "PostgreSQL statements per call", get: func(f figures) float64 { return f.http.stmts }, format: fmtN},
	}

	fmt.Fprintf(w, "\n### Over stdio: the TypeScript SDK client 1.32.2, %d rounds, medians across rounds\n\n", o.rounds)
	table(w, stdio, peerNames, all)
	fmt.Fprintf(w, "\n### Streamable HTTP: %d concurrent clients, point lookups for %s, medians across rounds\n\n", o.clients, o.httpFor)
	table(w, httpMetrics, []string{srvCairn, srvNothing, srvToolbox, srvDBHub}, all)

	fmt.Fprintf(w, "\n### Each round (p50 point / p50 1,000 rows / HTTP calls/s)\n\n| server |")
	for i := range o.rounds {
		fmt.Fprintf(w, " round %d |", i+1)
	}
	fmt.Fprintf(w, "\n|---|%s\n", strings.Repeat("---|", o.rounds))
	for _, name := range peerNames {
		if len(all[name]) == 0 {
			continue
		}
		fmt.Fprintf(w, "| %s |", name)
		for _, f := range all[name] {
			fmt.Fprintf(w, " %.3f / %.3f ms", msOf(f.point.lat.median), msOf(f.thousand.lat.median))
			if f.httpRate > 0 {
				fmt.Fprintf(w, " / %.0f", f.httpRate)
			}
			fmt.Fprint(w, " |")
		}
		fmt.Fprintln(w)
	}

	fmt.Fprintf(w, "\n### Goals (issue 13)\n\n")
	c := func(m metric) float64 { return m.median(all[srvCairn]) }
	verdict := func(ok bool, have float64) string {
		if have == 0 {
			return "not measured"
		}
		if ok {
			return "met"
		}
		return "NOT met"
	}
	point, thousand := stdio[0], stdio[2]
	bp, bpWho := point.best(all)
	bt, btWho := thousand.best(all)
	nothing := point.median(all[srvNothing])
	fmt.Fprintf(w, "- stdio point lookup p50 below the fastest peer (%s, %s) and within 1.1x of the do-nothing go-sdk server (%s): cairn %s, %s / %s — %s\n",
		bpWho, fmtMS(bp), fmtMS(nothing), fmtMS(c(point)), ratioCell(c(point), bp), ratioCell(c(point), nothing),
		verdict(c(point) < bp && c(point) <= 1.1*nothing, c(point)))
	fmt.Fprintf(w, "- stdio 1,000-row p50 at or below the fastest peer (%s, %s): cairn %s, %s — %s\n",
		btWho, fmtMS(bt), fmtMS(c(thousand)), ratioCell(c(thousand), bt), verdict(c(thousand) <= bt, c(thousand)))
	fmt.Fprintf(w, "- spawn → initialize ≤ 50 ms with --no-migrate: %s — %s; ≤ 80 ms with the migration check: %s — %s\n",
		fmtMS(c(stdio[4])), verdict(c(stdio[4]) <= 50, c(stdio[4])), fmtMS(c(stdio[5])), verdict(c(stdio[5]) <= 80, c(stdio[5])))
	rate, cpu := httpMetrics[0], httpMetrics[2]
	tb := rate.median(all[srvToolbox])
	fmt.Fprintf(w, "- Streamable HTTP server CPU per call ≤ 0.3 ms: %s — %s; more calls/s than Toolbox (%s): %s — %s\n",
		fmtMS(c(cpu)), verdict(c(cpu) <= 0.3, c(cpu)), fmtRate(tb), fmtRate(c(rate)), verdict(c(rate) > tb, c(rate)*tb))
	rss := stdio[6]
	fmt.Fprintf(w, "- RSS after %d calls ≤ 30 MB: %s — %s\n", calls, fmtMB(c(rss)), verdict(c(rss) <= 30*1024, c(rss)))
	if listErr != "" {
		fmt.Fprintf(w, "\n**cairn with all its toolsets: the TypeScript SDK client rejects its tools/list**, so a host on that SDK cannot use it; "+
			"this run called `cairn serve --toolsets %s`. The client said: `%s`\n", o.toolsets, oneLine(listErr, 300))
	} else {
		fmt.Fprintf(w, "\ncairn with all its toolsets: the TypeScript SDK client accepts its tools/list.\n")
	}
}

// table prints metrics × servers with the median across rounds, and cairn's ratios to the best
// of the peers and to the do-nothing go-sdk server.
func table(w io.Writer, ms []metric, servers []string, all map[string][]figures) {
	fmt.Fprintf(w, "| measurement | %s | cairn ÷ best peer | cairn ÷ do-nothing |\n|---|%s---|---|\n",
		strings.Join(servers, " | "), strings.Repeat("---|", len(servers)))
	for _, m := range ms {
		fmt.Fprintf(w, "| %s |", m.name)
		for _, s := range servers {
			v := m.median(all[s])
			if v == 0 { // not measured for this server
				fmt.Fprint(w, " |")
				continue
			}
			fmt.Fprintf(w, " %s |", m.format(v))
		}
		best, who := m.best(all)
		cairn := m.median(all[srvCairn])
		bestCell := ratioCell(cairn, best)
		if bestCell != "" {
			bestCell += " (" + who + ")"
		}
		fmt.Fprintf(w, " %s | %s |\n", bestCell, ratioCell(cairn, m.median(all[srvNothing])))
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
