package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/embed/embedtest"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/knowledge"
)

// From the built-in embedder to an Ollama model of another size while searches run: killed with
// SIGKILL half-way, run again, it continues, and the searches switch over without one failing.
func TestReindexSwitchesModelsAndResumes(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	builtin, _ := embed.NewBuiltin(768)
	writer := knowledge.New(db.Pool, knowledge.Options{Embedder: builtin})
	const rows = 240
	for i := range rows - 1 {
		if _, err := writer.AddEpisode(ctx, knowledge.EpisodeInput{Content: fmt.Sprintf("incident %d: checkout timed out calling payments", i)}); err != nil {
			t.Fatal(err)
		}
	}
	target, err := writer.AddEpisode(ctx, knowledge.EpisodeInput{Content: "ModuleNotFoundError: No module named numpy on dashboard startup"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := writer.EmbedPending(ctx, knowledge.EmbedOptions{}); err != nil {
		t.Fatal(err)
	}

	ollama := embedtest.New()
	defer ollama.Close()
	ollama.SetModel("all-minilm", 384)
	ollama.SetDelay(150 * time.Millisecond)

	// Another process searching all along, configured with the old model like a running server.
	reader := knowledge.New(db.Pool, knowledge.Options{Embedder: builtin, Factory: func(i embed.Info) (embed.Embedder, error) {
		if i.Provider == embed.ProviderBuiltin {
			return embed.NewBuiltin(i.Dimensions)
		}
		return embed.NewOllama(embed.Options{Host: ollama.URL, Model: i.Model, Dimensions: i.Dimensions})
	}})
	var mu sync.Mutex
	var models []string
	var failed []string
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			res, err := reader.Search(ctx, knowledge.SearchQuery{Query: "no module named numpy", Kinds: []string{knowledge.KindEpisode}, Mode: knowledge.ModeSemantic, Limit: 1})
			mu.Lock()
			switch {
			case err != nil || len(res.Results) != 1 || res.Results[0].ID != target.ID:
				failed = append(failed, fmt.Sprintf("%v %+v", err, res))
			case len(models) == 0 || models[len(models)-1] != res.Model:
				models = append(models, res.Model)
			}
			mu.Unlock()
		}
	}()

	args := []string{"reindex", "--database-url", db.URL, "--embedder", "ollama", "--model", "all-minilm", "--dims", "384",
		"--ollama-host", ollama.URL, "--batch", "8"}
	cmd := exec.Command(cairnBin, args...)
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		var n int
		// The column exists once the reindex has started; until then the query fails.
		err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM episodes WHERE embedded_next_hash IS NOT NULL`).Scan(&n)
		if err == nil && n >= 80 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the reindex did not get going: %v, %d rows", err, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	var pending string
	if err := db.Pool.QueryRow(ctx, `SELECT label FROM knowledge_reindex WHERE kind = 'episode'`).Scan(&pending); err != nil || pending != "ollama/all-minilm/384" {
		t.Fatalf("after the kill, the unfinished reindex is %q (%v)", pending, err)
	}
	before := documents(ollama)

	ollama.SetDelay(0)
	r := runCLI(t, nil, args...)
	// Searches after the switch: until one has used the new model (or it is clear none will).
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		mu.Lock()
		switched := len(models) > 0 && models[len(models)-1] != "builtin/hashing-v1/768"
		mu.Unlock()
		if switched {
			break
		}
	}
	close(stop)
	<-done
	if r.Code != 0 || !strings.Contains(r.Stdout, "episodes: switched from builtin/hashing-v1/768 to ollama/all-minilm/384 (resumed)") {
		t.Fatalf("resumed reindex: %+v", r)
	}
	// The second run embedded what was left (and the few rows the kill cut short), not everything.
	if again := documents(ollama) - before; again > rows-80+16 {
		t.Fatalf("the resumed run embedded %d texts; %d were left", again, rows-80)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(failed) > 0 {
		t.Fatalf("%d searches failed during the reindex, e.g. %s", len(failed), failed[0])
	}
	if len(models) != 2 || models[0] != "builtin/hashing-v1/768" || models[1] != "ollama/all-minilm/384" {
		t.Fatalf("models searched with, in order: %v", models)
	}

	// Index rebuild and a reindex with nothing to do.
	if r := runCLI(t, nil, "reindex", "--database-url", db.URL, "--index-only"); r.Code != 0 || !strings.Contains(r.Stdout, "rebuilt") {
		t.Fatalf("--index-only: %+v", r)
	}
	if r := runCLI(t, nil, args...); r.Code != 0 || !strings.Contains(r.Stdout, "nothing to do") {
		t.Fatalf("second reindex: %+v", r)
	}
}

func TestReindexRefusesBadFlags(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--kind", "facts"}, 2, "--kind"},
		{[]string{"--embedder", "openai"}, 2, "--embedder"},
		{[]string{"--dims", "4096", "--embedder", "builtin"}, 2, "2000"},
		{[]string{"--index-only", "--abort"}, 2, "do not go together"},
		{[]string{"--ollama-host", "http://127.0.0.1:1", "--embed-timeout", "2s"}, 1, "cannot embed"},
	} {
		r := runCLI(t, nil, append([]string{"reindex", "--database-url", db.URL}, tc.args...)...)
		if r.Code != tc.code || !strings.Contains(r.Stderr, tc.want) {
			t.Errorf("reindex %v: exit %d, stderr %q; want %d and %q", tc.args, r.Code, r.Stderr, tc.code, tc.want)
		}
	}
}

// documents counts the rows' texts the stand-in was asked to embed (not search queries).
func documents(o *embedtest.Server) int {
	n := 0
	for _, r := range o.Requests() {
		for _, in := range r.Input {
			if strings.HasPrefix(in, "incident ") || strings.HasPrefix(in, "ModuleNotFoundError") {
				n++
			}
		}
	}
	return n
}
