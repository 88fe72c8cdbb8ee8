package status

import (
	"cmp"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/checkpoint"
	"github.com/cairn-mcp/cairn/knowledge"
)

// WriteText prints the report for people: sections of aligned "key  value" lines.
func (r *Report) WriteText(w io.Writer) {
	const key = "  %-18s %s\n"
	line := func(k, format string, args ...any) { fmt.Fprintf(w, key, k, fmt.Sprintf(format, args...)) }
	verdict := "healthy"
	switch r.ExitCode() {
	case ExitUnreachable:
		verdict = "UNREACHABLE"
	case ExitDegraded:
		verdict = "DEGRADED"
	}
	fmt.Fprintf(w, "cairn %s status: %s\n", r.CairnVersion, verdict)
	r.Database.writeText(w, line)
	if e := r.Embedder; e != nil {
		e.writeText(w, line)
	}
	if q := r.Queue; q != nil {
		q.writeText(w, line)
	}
	if n := r.Counts; n != nil && (n.WorkflowsTotal != nil || n.Agents != nil || n.Entities != nil) {
		n.writeText(w, line)
	}
	if in := r.Interrupted; in != nil {
		fmt.Fprintf(w, "\ninterrupted workflows: %d\n", in.Count)
		for _, iw := range in.Recent {
			at := "interrupt time unknown"
			if iw.InterruptedAt != nil {
				at = iw.InterruptedAt.Format(time.RFC3339)
			}
			desc := cmp.Or(iw.Reason, iw.Name)
			if desc != "" {
				desc = "  " + oneLine(desc, 60)
			}
			fmt.Fprintf(w, "  %-38s %s%s\n", iw.ID, at, desc)
		}
	}
	if len(r.Problems) > 0 {
		fmt.Fprintln(w, "\nproblems")
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  - [%s] %s\n", p.Code, p.Message)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w, "\nwarnings")
		for _, s := range r.Warnings {
			fmt.Fprintf(w, "  - %s\n", s)
		}
	}
}

// lineFunc writes one aligned "key  value" line of a section.
type lineFunc func(k, format string, args ...any)

func (d *Database) writeText(w io.Writer, line lineFunc) {
	fmt.Fprintln(w, "\ndatabase")
	if d.Embedded != nil {
		state := "stopped"
		if d.Embedded.Running {
			state = "running"
		} else if !d.Embedded.Initialized {
			state = "not created"
		}
		line("embedded cluster", "%s (%s)", state, d.Embedded.DataDir)
	}
	if d.Target != "" {
		line("target", "%s", d.Target)
	}
	line("reachable", "%s", yesNo(d.Reachable))
	if !d.Reachable {
		if d.Error != "" {
			line("error", "%s", d.Error)
		}
		return
	}
	line("postgresql", "%s", d.PostgresVersion)
	if d.Superuser {
		line("role", "%s (superuser)", d.Role)
	} else if d.Role != "" {
		line("role", "%s", d.Role)
	}
	switch {
	case d.Pgvector != "":
		line("pgvector", "%s", d.Pgvector)
	case d.PgvectorAvailable != "":
		line("pgvector", "not installed (%s available)", d.PgvectorAvailable)
	default:
		line("pgvector", "not installed")
	}
	schema := fmt.Sprintf("%d (this cairn: %d)", d.SchemaVersion, d.SchemaLatest)
	switch {
	case d.SchemaVersion > d.SchemaLatest:
		schema += "; ahead: upgrade cairn"
	case len(d.SchemaPending) > 0:
		schema += fmt.Sprintf("; behind, pending %v: run cairn migrate", d.SchemaPending)
	default:
		schema += "; up to date"
	}
	line("schema", "%s", schema)
	if len(d.RiverPending) > 0 {
		line("river schema", "%d migrations pending %v: run cairn migrate", len(d.RiverPending), d.RiverPending)
	} else {
		line("river schema", "up to date")
	}
}

func (e *Embedder) writeText(w io.Writer, line lineFunc) {
	fmt.Fprintln(w, "\nembedder")
	line("flags choose", "%s (--embedder %s: %s)", e.Label, e.Requested, e.Why)
	if len(e.Ollama) == 0 {
		line("ollama", "not probed")
	}
	for _, o := range e.Ollama {
		if o.OK {
			line("ollama", "%s answered at %s", o.Model, o.Host)
		} else {
			line("ollama", "%s not usable: %s", o.Model, o.Error)
		}
	}
	for _, kind := range []string{knowledge.KindEntity, knowledge.KindEpisode} {
		m := e.Recorded[kind]
		switch {
		case m == "":
			m = "none recorded yet (the flags' embedder will be)"
		case m != e.Label:
			m += "  ← not the flags' embedder"
		}
		line(kind+" model", "%s", m)
	}
	line("vector columns", "vector(%d)", e.ColumnDimensions)
}

func (q *Queue) writeText(w io.Writer, line lineFunc) {
	fmt.Fprintln(w, "\nqueue")
	avail := fmt.Sprint(q.Available)
	if q.Available > 0 {
		avail += fmt.Sprintf(" (oldest waiting %s)", (time.Duration(q.OldestAvailableSeconds * float64(time.Second))).Round(time.Second))
	}
	line("available", "%s", avail)
	line("scheduled", "%d", q.Scheduled+q.Pending)
	line("retryable", "%d", q.Retryable)
	line("running", "%d", q.Running)
	line("discarded", "%d (failed for good)", q.Discarded)
	for _, f := range q.Failing {
		msg := fmt.Sprintf("%s ×%d", f.State, f.Jobs)
		if f.LastError != "" {
			msg += ": " + oneLine(f.LastError, 100)
		}
		line("  "+f.Kind, "%s", msg)
	}
}

func (n *Counts) writeText(w io.Writer, line lineFunc) {
	fmt.Fprintln(w, "\ncounts")
	if n.WorkflowsTotal != nil {
		var parts []string
		for _, s := range checkpoint.Statuses() {
			if v := n.Workflows[s]; v > 0 {
				parts = append(parts, fmt.Sprintf("%s %d", s, v))
			}
		}
		by := ""
		if len(parts) > 0 {
			by = " (" + strings.Join(parts, ", ") + ")"
		}
		line("workflows", "%d%s", *n.WorkflowsTotal, by)
	}
	for _, kv := range []struct {
		k string
		v *int64
	}{{"checkpoints", n.Checkpoints}, {"agents", n.Agents}, {"executions", n.Executions},
		{"entities", n.Entities}, {"episodes", n.Episodes}, {"relations", n.Relations}} {
		if kv.v != nil {
			line(kv.k, "%d", *kv.v)
		}
	}
	if n.EmbeddingsPending != nil {
		line("embeddings", "%d pending, %d failed", *n.EmbeddingsPending, *n.EmbeddingsFailed)
	}
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// oneLine shortens s to one line of at most n runes for the report.
func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}
