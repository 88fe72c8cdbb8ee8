package backend

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

func testConfig(t *testing.T, url string) *config.Config {
	t.Helper()
	cfg := &config.Config{DatabaseURL: url, PoolMin: 0, PoolMax: 4, SystemPoolMax: 4, StatementTimeout: 30 * time.Second}
	if err := cfg.Normalize(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A started backend has the knowledge graph with the chosen embedder, the domain modules' jobs
// registered, and a job client that stops.
func TestStartAndStop(t *testing.T) {
	db := testdb.New(t)
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)
	b, err := Open(ctx, Options{Config: testConfig(t, db.URL), Jobs: jobs.Options{Logger: log}, Logger: log,
		Knowledge:      KnowledgeOptions{Embed: embed.Options{Provider: embed.ProviderBuiltin}, Logger: log},
		Embedding:      jobs.EmbedOptions{Sweep: time.Minute, MaxBackoff: time.Second, Workers: 1, Pipeline: knowledge.EmbedOptions{Batch: 8}, Logger: log},
		RetentionEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b.Embedded || b.Data == "" {
		t.Errorf("Embedded %t, Data %q", b.Embedded, b.Data)
	}
	b.StopJobs() // before Start: nothing to stop
	if err := b.Start(ctx, ctx); err != nil {
		t.Fatal(err)
	}
	defer b.StopJobs()
	if b.Knowledge.Store == nil || b.Knowledge.Embedder == nil || b.Knowledge.Choice == "" {
		t.Errorf("knowledge: %+v", b.Knowledge)
	}
	if len(b.Registry.Kinds()) == 0 || b.Jobs == nil {
		t.Errorf("kinds %v, jobs %v", b.Registry.Kinds(), b.Jobs)
	}
}

func TestUsageErrors(t *testing.T) {
	ctx := context.Background()
	cfg := &config.Config{DatabaseURL: "postgres://h/db?sslmode=nonsense", PoolMax: 1, SystemPoolMax: 1}
	_, err := PoolConfig(ctx, cfg, "", slog.New(slog.DiscardHandler))
	var ue *config.UsageError
	if !errors.As(err, &ue) {
		t.Errorf("a bad connection string: %v, want a UsageError", err)
	}
	db := testdb.New(t)
	_, err = OpenKnowledge(ctx, db.Pool, KnowledgeOptions{Embed: embed.Options{Provider: "nonsense"}, Logger: slog.New(slog.DiscardHandler)})
	if !errors.As(err, &ue) {
		t.Errorf("an unknown embedder: %v, want a UsageError", err)
	}
}

func TestPrepareSchemaWithoutMigrating(t *testing.T) {
	db := testdb.New(t)
	if err := PrepareSchema(context.Background(), db.Pool, true, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	applied, err := Migrate(context.Background(), db.Pool, slog.New(slog.DiscardHandler))
	if err != nil || len(applied) != 0 {
		t.Errorf("a migrated database: applied %v, %v", applied, err)
	}
}
