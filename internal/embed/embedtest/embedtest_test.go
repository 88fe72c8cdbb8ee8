package embedtest_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ollama/ollama/api"

	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
)

// The stand-in must look like Ollama to Ollama's own client, including its defaults.
func TestWireFormat(t *testing.T) {
	s := embedtest.New()
	defer s.Close()
	s.SetMaxInputChars(10)
	u, _ := url.Parse(s.URL)
	c := api.NewClient(u, http.DefaultClient)
	ctx := context.Background()

	if err := c.Heartbeat(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Version(ctx); err != nil || v != embedtest.Version {
		t.Fatalf("Version = %q, %v", v, err)
	}
	list, err := c.List(ctx)
	if err != nil || len(list.Models) != 1 || list.Models[0].Name != "nomic-embed-text:latest" {
		t.Fatalf("List = %+v, %v", list, err)
	}
	show, err := c.Show(ctx, &api.ShowRequest{Model: "nomic-embed-text:latest"})
	if err != nil || show.ModelInfo["nomic-bert.embedding_length"] != float64(768) {
		t.Fatalf("Show = %+v, %v", show, err)
	}

	// A single string input, truncation left to Ollama's default (on): cut silently.
	resp, err := c.Embed(ctx, &api.EmbedRequest{Model: "nomic-embed-text", Input: "far longer than ten characters"})
	if err != nil || len(resp.Embeddings) != 1 || len(resp.Embeddings[0]) != 768 {
		t.Fatalf("Embed = %+v, %v", resp, err)
	}
	off := false
	_, err = c.Embed(ctx, &api.EmbedRequest{Model: "nomic-embed-text", Input: []string{"short", "far longer than ten characters"}, Truncate: &off})
	var se api.StatusError
	if !errors.As(err, &se) || se.StatusCode != 400 || !strings.Contains(se.ErrorMessage, "context length") {
		t.Fatalf("too long with truncate=false: %v", err)
	}
	_, err = c.Embed(ctx, &api.EmbedRequest{Model: "all-minilm", Input: []string{"x"}})
	if !errors.As(err, &se) || se.StatusCode != 404 || se.ErrorMessage != "model 'all-minilm' not found" {
		t.Fatalf("missing model: %v", err)
	}
	if s.Calls() != 3 || s.Inputs() != 4 {
		t.Fatalf("Calls %d Inputs %d, want 3 and 4", s.Calls(), s.Inputs())
	}
}
