package embed_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"

	"github.com/cairn-mcp/cairn/internal/embed"
)

func cosine(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func mustBuiltin(t testing.TB, dims int) *embed.Builtin {
	t.Helper()
	b, err := embed.NewBuiltin(dims)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func embedOne(t testing.TB, e embed.Embedder, text string) []float32 {
	t.Helper()
	v, err := e.Embed(context.Background(), embed.Document, []string{text})
	if err != nil {
		t.Fatalf("Embed(%q): %v", text, err)
	}
	return v[0]
}

func TestBuiltinDeterministicAndNormalised(t *testing.T) {
	texts := []string{
		"ModuleNotFoundError: No module named 'requests'",
		"nginx deployed to production",
		"日本語のテキスト",
		"!!!",
		"x",
		strings.Repeat("long text with many words ", 500),
	}
	for _, dims := range []int{0, 8, 384, 768} {
		b := mustBuiltin(t, dims)
		want := dims
		if want == 0 {
			want = embed.DefaultBuiltinDimensions
		}
		if got := b.Info(); got != (embed.Info{Provider: "builtin", Model: embed.BuiltinModel, Dimensions: want}) {
			t.Fatalf("Info() = %+v", got)
		}
		first, err := b.Embed(context.Background(), embed.Document, texts)
		if err != nil {
			t.Fatal(err)
		}
		again, err := mustBuiltin(t, dims).Embed(context.Background(), embed.Query, texts)
		if err != nil {
			t.Fatal(err)
		}
		for i := range texts {
			if len(first[i]) != want {
				t.Fatalf("dims %d text %d: len %d", dims, i, len(first[i]))
			}
			if n := math.Sqrt(cosine(first[i], first[i])); math.Abs(n-1) > 1e-5 {
				t.Errorf("dims %d text %d: norm %v, want 1", dims, i, n)
			}
			for j := range first[i] {
				if first[i][j] != again[i][j] {
					t.Fatalf("dims %d text %d: not deterministic at %d", dims, i, j)
				}
			}
		}
	}
}

// The exact values pin the hashing scheme: if this fails, the scheme changed and BuiltinModel must
// be renamed so stored vectors are not mixed with new ones.
func TestBuiltinStableAcrossVersions(t *testing.T) {
	v := embedOne(t, mustBuiltin(t, 16), "ModuleNotFoundError: No module named 'requests'")
	got := fmt.Sprintf("%.4f", v[:4])
	const want = "[-0.0979 -0.1959 -0.3918 0.0000]"
	if got != want {
		t.Fatalf("builtin vector changed: got %s want %s; rename BuiltinModel", got, want)
	}
}

func TestBuiltinSimilarityOrdering(t *testing.T) {
	b := mustBuiltin(t, 384)
	tests := []struct {
		anchor, similar, unrelated string
	}{
		{"ModuleNotFoundError: No module named 'requests'", "ModuleNotFoundError: no module named requests", "nginx deployed to production"},
		{"connection refused to postgres on port 5432", "postgres: connection refused (port 5432)", "ModuleNotFoundError: No module named 'requests'"},
		{"deployed nginx 1.25 to production", "nginx deployment to production finished", "TypeError: cannot read property 'map' of undefined"},
		{"ModuleNotFoundError", "module not found error", "disk quota exceeded on /var"},
	}
	for _, tt := range tests {
		a, s, u := embedOne(t, b, tt.anchor), embedOne(t, b, tt.similar), embedOne(t, b, tt.unrelated)
		simS, simU := cosine(a, s), cosine(a, u)
		t.Logf("%q: similar %.3f unrelated %.3f", tt.anchor, simS, simU)
		if simS < simU+0.3 {
			t.Errorf("%q: similar %.3f not clearly above unrelated %.3f", tt.anchor, simS, simU)
		}
	}
}

func TestBuiltinRejectsBlank(t *testing.T) {
	b := mustBuiltin(t, 32)
	_, err := b.Embed(context.Background(), embed.Document, []string{"ok", "", "fine", " \n\t"})
	var perr *embed.PermanentError
	if !errors.As(err, &perr) {
		t.Fatalf("err = %v, want *PermanentError", err)
	}
	if fmt.Sprint(perr.Inputs) != "[1 3]" {
		t.Fatalf("Inputs = %v, want [1 3]", perr.Inputs)
	}
	if _, err := embed.NewBuiltin(-1); err == nil {
		t.Fatal("NewBuiltin(-1) succeeded")
	}
}

func BenchmarkBuiltin(b *testing.B) {
	for _, tc := range []struct {
		name string
		text string
	}{
		{"short-50B", "ModuleNotFoundError: No module named 'requests'"},
		{"medium-500B", strings.Repeat("Traceback: File app.py line 12 in handler; ", 11)},
		{"long-5KB", strings.Repeat("the deployment of nginx to production failed because ", 100)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := mustBuiltin(b, 384)
			texts := []string{tc.text}
			b.SetBytes(int64(len(tc.text)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := e.Embed(context.Background(), embed.Document, texts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
