package mcp

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// About is what a person needs to know about a running server: what it is, where its data
// lives and which embedder it uses. `cairn serve` prints it at start and GET / answers with it.
type About struct {
	Version string
	// Data says where the data lives, e.g. `database "cairn" as user "cairn" at db:5432` or
	// `the embedded PostgreSQL cluster in ~/.local/share/cairn/postgres`.
	Data string
	// Embedder names the knowledge graph's embedder and why it was chosen.
	Embedder string
}

// aboutFacts are About's facts for a server reached at base (http://host:port).
type aboutFacts struct {
	Name           string `json:"name"`
	Version        string `json:"version"`
	StreamableHTTP string `json:"streamable_http"`
	SSE            string `json:"sse"`
	Connect        string `json:"connect"`
	Inspector      string `json:"inspector"`
	Data           string `json:"data,omitempty"`
	Embedder       string `json:"embedder,omitempty"`
	Health         string `json:"health"`
	Ready          string `json:"ready"`
	Metrics        string `json:"metrics"`
}

func (a About) facts(base string) aboutFacts {
	return aboutFacts{
		Name: "cairn", Version: a.Version,
		StreamableHTTP: base + "/mcp", SSE: base + "/sse",
		Connect:   "claude mcp add --transport http cairn " + base + "/mcp",
		Inspector: "npx @modelcontextprotocol/inspector, then connect to " + base + "/mcp (Streamable HTTP)",
		Data:      a.Data, Embedder: a.Embedder,
		Health: base + "/healthz", Ready: base + "/readyz", Metrics: base + "/metrics",
	}
}

// Text is the banner: a few lines a person reads at start, for a server reached at base.
func (a About) Text(base string) string {
	f := a.facts(base)
	var b strings.Builder
	fmt.Fprintf(&b, "cairn %s is serving MCP at %s (Streamable HTTP) and %s (SSE)\n", f.Version, f.StreamableHTTP, f.SSE)
	fmt.Fprintf(&b, "  connect a client  %s\n", f.Connect)
	fmt.Fprintf(&b, "  try it by hand    %s\n", f.Inspector)
	if f.Data != "" {
		fmt.Fprintf(&b, "  data              %s\n", f.Data)
	}
	if f.Embedder != "" {
		fmt.Fprintf(&b, "  embedder          %s\n", f.Embedder)
	}
	fmt.Fprintf(&b, "  health            %s, %s, %s; Ctrl-C stops it\n", f.Health, f.Ready, f.Metrics)
	return b.String()
}

// root answers GET / with About: text for people (a browser, curl), JSON for programs that ask
// for it. On a server that requires tokens, the data and embedder are left out.
func (s *Server) root(w http.ResponseWriter, r *http.Request, authRequired bool) {
	about := s.aboutNow()
	if authRequired {
		about.Data, about.Embedder = "", ""
	}
	scheme := "http"
	if r.TLS != nil || strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		scheme = "https"
	}
	base := scheme + "://" + r.Host
	if strings.Contains(r.Header.Get("Accept"), "application/json") {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(about.facts(base)) // a client that went away cannot be told
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, about.Text(base))
}
