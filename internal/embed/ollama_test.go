package embed_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testbin"
)

func standIn(t testing.TB) *embedtest.Server {
	t.Helper()
	s := embedtest.New()
	t.Cleanup(s.Close)
	return s
}

func newOllama(t testing.TB, opts embed.Options) *embed.Ollama {
	t.Helper()
	o, err := embed.NewOllama(opts)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// closedAddr returns a loopback URL on which nothing listens.
func closedAddr(t testing.TB) string {
	t.Helper()
	return "http://" + testbin.FreeAddr(t)
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("episode %d: deploy of service-%d failed", i, i%7)
	}
	return out
}

func TestOllamaBatching(t *testing.T) {
	srv := standIn(t)
	o := newOllama(t, embed.Options{Host: srv.URL})
	in := texts(150)
	vecs, err := o.Embed(context.Background(), embed.Document, in)
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 150 {
		t.Fatalf("got %d vectors", len(vecs))
	}
	reqs := srv.Requests()
	var sizes []int
	for _, r := range reqs {
		sizes = append(sizes, len(r.Input))
		if r.Truncate == nil || *r.Truncate {
			t.Errorf("truncate = %v, want explicit false", r.Truncate)
		}
		if r.Model != "nomic-embed-text" {
			t.Errorf("model = %q", r.Model)
		}
	}
	if fmt.Sprint(sizes) != "[64 64 22]" || srv.Calls() != 3 || srv.Inputs() != 150 {
		t.Fatalf("batches %v calls %d inputs %d, want [64 64 22], 3, 150", sizes, srv.Calls(), srv.Inputs())
	}
	// Order is kept: vector i is the stand-in's vector for input i.
	ref := mustBuiltin(t, 768)
	for _, i := range []int{0, 63, 64, 149} {
		want := embedOne(t, ref, "search_document: "+in[i])
		if c := cosine(vecs[i], want); c < 0.9999 {
			t.Errorf("vector %d does not belong to input %d (cos %.4f)", i, i, c)
		}
	}
	if got := o.Info(); got != (embed.Info{Provider: "ollama", Model: "nomic-embed-text", Dimensions: 768}) {
		t.Errorf("Info() = %+v", got)
	}

	srv.Reset()
	small := newOllama(t, embed.Options{Host: srv.URL, BatchSize: 10})
	if _, err := small.Embed(context.Background(), embed.Document, texts(25)); err != nil {
		t.Fatal(err)
	}
	if srv.Calls() != 3 {
		t.Errorf("BatchSize 10, 25 inputs: %d calls, want 3", srv.Calls())
	}
}

func TestOllamaPrefixes(t *testing.T) {
	srv := standIn(t)
	srv.SetModel("nomic-embed-text:v1.5", 768)
	srv.SetModel("all-minilm", 384)
	srv.SetModel("my-embedder", 64)
	tests := []struct {
		model string
		kind  embed.Kind
		want  string
	}{
		{"nomic-embed-text", embed.Document, "search_document: "},
		{"nomic-embed-text", embed.Query, "search_query: "},
		{"nomic-embed-text:v1.5", embed.Query, "search_query: "},
		{"all-minilm", embed.Document, ""},
		{"all-minilm", embed.Query, ""},
		{"my-embedder", embed.Query, ""},
	}
	for _, tt := range tests {
		t.Run(tt.model+"/"+tt.kind.String(), func(t *testing.T) {
			srv.Reset()
			o := newOllama(t, embed.Options{Host: srv.URL, Model: tt.model})
			if _, err := o.Embed(context.Background(), tt.kind, []string{"hello world"}); err != nil {
				t.Fatal(err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 || reqs[0].Input[0] != tt.want+"hello world" {
				t.Fatalf("server saw %+v, want input %q", reqs, tt.want+"hello world")
			}
		})
	}
}

func TestOllamaErrors(t *testing.T) {
	long := strings.Repeat("x", 200)
	tests := []struct {
		name      string
		setup     func(s *embedtest.Server)
		opts      func(o *embed.Options)
		input     []string
		transient bool
		contains  []string
		inputs    string // PermanentError.Inputs, formatted
	}{
		{name: "500", setup: func(s *embedtest.Server) { s.FailNext(1) }, transient: true, contains: []string{"HTTP 500"}},
		{name: "503 busy", setup: func(s *embedtest.Server) {
			s.FailNextWith(1, http.StatusServiceUnavailable, "server busy, please try again")
		}, transient: true},
		{name: "connection refused", opts: func(o *embed.Options) { o.Host = "" }, transient: true, contains: []string{"ollama serve", "OLLAMA_HOST"}},
		{name: "connection dropped", setup: func(s *embedtest.Server) { s.SetUnreachable(true) }, transient: true},
		{name: "timeout", setup: func(s *embedtest.Server) { s.SetDelay(300 * time.Millisecond) }, opts: func(o *embed.Options) { o.Timeout = 30 * time.Millisecond }, transient: true, contains: []string{"did not answer"}},
		{name: "model missing", setup: func(s *embedtest.Server) { s.RemoveModel("nomic-embed-text") }, contains: []string{"ollama pull nomic-embed-text"}, inputs: "[]"},
		{name: "not an embedding model", setup: func(s *embedtest.Server) { s.FailNextWith(1, 400, `"llama3" does not support embeddings`) }, contains: []string{"cannot embed"}, inputs: "[]"},
		{name: "too long alone", setup: func(s *embedtest.Server) { s.SetMaxInputChars(100) }, input: []string{long}, contains: []string{"longer than model"}, inputs: "[0]"},
		{
			name: "too long in batches", setup: func(s *embedtest.Server) { s.SetMaxInputChars(100) }, opts: func(o *embed.Options) { o.BatchSize = 2 },
			input: []string{"a", long, "b", "c", long, long, "d"}, contains: []string{"split it"}, inputs: "[1 4 5]",
		},
		{name: "wrong dimensions", setup: func(s *embedtest.Server) { s.SetModel("nomic-embed-text", 512) }, contains: []string{"512-dimensional", "768 dimensions"}, inputs: "[]"},
		{name: "wrong configured dimensions", opts: func(o *embed.Options) { o.Dimensions = 384 }, contains: []string{"768-dimensional", "384 dimensions"}, inputs: "[]"},
		{name: "blank input", input: []string{"ok", "  "}, contains: []string{"empty text"}, inputs: "[1]"},
	}
	dead := closedAddr(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := standIn(t)
			if tt.setup != nil {
				tt.setup(srv)
			}
			opts := embed.Options{Host: srv.URL}
			if tt.opts != nil {
				tt.opts(&opts)
			}
			if opts.Host == "" {
				opts.Host = dead
			}
			input := tt.input
			if input == nil {
				input = []string{"ModuleNotFoundError: No module named 'requests'"}
			}
			_, err := newOllama(t, opts).Embed(context.Background(), embed.Document, input)
			if err == nil {
				t.Fatal("Embed succeeded")
			}
			if embed.IsTransient(err) != tt.transient || embed.IsPermanent(err) == tt.transient {
				t.Fatalf("err = %v (%T): transient %v, want %v", err, err, embed.IsTransient(err), tt.transient)
			}
			for _, c := range tt.contains {
				if !strings.Contains(err.Error(), c) {
					t.Errorf("error %q does not contain %q", err, c)
				}
			}
			if !tt.transient {
				var perr *embed.PermanentError
				errors.As(err, &perr)
				if got := fmt.Sprint(perr.Inputs); got != tt.inputs {
					t.Errorf("Inputs = %s, want %s", got, tt.inputs)
				}
			}
		})
	}
}

func TestOllamaRecoversAfterTransient(t *testing.T) {
	srv := standIn(t)
	o := newOllama(t, embed.Options{Host: srv.URL})
	srv.FailNext(2)
	for i := range 2 {
		if _, err := o.Embed(context.Background(), embed.Document, []string{"x"}); !embed.IsTransient(err) {
			t.Fatalf("call %d: err = %v, want transient", i, err)
		}
	}
	if _, err := o.Embed(context.Background(), embed.Document, []string{"x"}); err != nil {
		t.Fatalf("after failures cleared: %v", err)
	}
}

func TestOllamaContextCancel(t *testing.T) {
	srv := standIn(t)
	srv.SetDelay(5 * time.Second)
	o := newOllama(t, embed.Options{Host: srv.URL})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	start := time.Now()
	_, err := o.Embed(ctx, embed.Query, []string{"x"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if embed.IsTransient(err) || embed.IsPermanent(err) {
		t.Errorf("cancellation classified as a provider failure: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("cancel took %s", time.Since(start))
	}
}

func TestOllamaLearnsDimensions(t *testing.T) {
	srv := standIn(t)
	srv.SetModel("custom-embed", 100)
	o := newOllama(t, embed.Options{Host: srv.URL, Model: "custom-embed"})
	if d := o.Info().Dimensions; d != 0 {
		t.Fatalf("unknown model: Dimensions %d before any call, want 0", d)
	}
	if _, err := o.Embed(context.Background(), embed.Document, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if d := o.Info().Dimensions; d != 100 {
		t.Fatalf("Dimensions %d, want 100 learned from the answer", d)
	}
	// The model changing under the same name must not go unnoticed.
	srv.SetModel("custom-embed", 50)
	if _, err := o.Embed(context.Background(), embed.Document, []string{"x"}); !embed.IsPermanent(err) {
		t.Fatalf("err = %v, want permanent dimension mismatch", err)
	}

	p := newOllama(t, embed.Options{Host: srv.URL, Model: "custom-embed"})
	if err := p.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := p.Info().Dimensions; d != 50 {
		t.Fatalf("Probe: Dimensions %d, want 50 from /api/show", d)
	}
}

func TestOllamaHostFromEnvironment(t *testing.T) {
	srv := standIn(t)
	t.Setenv("OLLAMA_HOST", srv.URL)
	o := newOllama(t, embed.Options{})
	if _, err := o.Embed(context.Background(), embed.Document, []string{"x"}); err != nil {
		t.Fatal(err)
	}
	if srv.Calls() != 1 {
		t.Fatalf("stand-in saw %d calls", srv.Calls())
	}
}

func TestOllamaConcurrent(t *testing.T) {
	srv := standIn(t)
	srv.SetModel("custom-embed", 32)
	o := newOllama(t, embed.Options{Host: srv.URL, Model: "custom-embed", BatchSize: 3})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			if _, err := o.Embed(context.Background(), embed.Kind(g%2), texts(10)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if srv.Inputs() != 80 {
		t.Fatalf("inputs %d, want 80", srv.Inputs())
	}
}

func TestNewChoosesProvider(t *testing.T) {
	srv := standIn(t)
	missing := standIn(t)
	missing.RemoveModel("nomic-embed-text")
	slow := standIn(t)
	slow.SetDelay(2 * time.Second)
	dead := closedAddr(t)
	tests := []struct {
		name     string
		opts     embed.Options
		provider string
		dims     int
		why      string
	}{
		{"auto with Ollama", embed.Options{Host: srv.URL}, "ollama", 768, "Ollama answered"},
		{"auto explicit", embed.Options{Provider: "auto", Host: srv.URL}, "ollama", 768, "Ollama answered"},
		{"auto nothing listens", embed.Options{Host: dead}, "builtin", 384, "ollama serve"},
		{"auto model missing", embed.Options{Host: missing.URL}, "builtin", 384, "ollama pull"},
		{"auto too slow", embed.Options{Host: slow.URL, ProbeTimeout: 50 * time.Millisecond}, "builtin", 384, "deadline"},
		{"auto fallback keeps dims", embed.Options{Host: dead, Dimensions: 768}, "builtin", 768, "built-in"},
		{"builtin", embed.Options{Provider: "builtin", Host: srv.URL}, "builtin", 384, "configured"},
		{"ollama while down", embed.Options{Provider: "OLLAMA", Host: dead}, "ollama", 768, "not ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs bytes.Buffer
			tt.opts.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			e, err := embed.New(context.Background(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			if info := e.Info(); info.Provider != tt.provider || info.Dimensions != tt.dims {
				t.Errorf("Info() = %+v, want %s with %d dims", info, tt.provider, tt.dims)
			}
			if !strings.Contains(logs.String(), tt.why) {
				t.Errorf("log %q does not say %q", logs.String(), tt.why)
			}
		})
	}
	if _, err := embed.New(context.Background(), embed.Options{Provider: "openai"}); err == nil || !strings.Contains(err.Error(), "builtin") {
		t.Errorf("unknown provider: err = %v, want one listing the valid names", err)
	}
}

func BenchmarkOllamaStandIn(b *testing.B) {
	for _, batch := range []int{1, 64} {
		b.Run(fmt.Sprintf("batch-%d", batch), func(b *testing.B) {
			srv := standIn(b)
			o := newOllama(b, embed.Options{Host: srv.URL})
			in := texts(batch)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := o.Embed(context.Background(), embed.Document, in); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*batch), "ns/text")
		})
	}
}
