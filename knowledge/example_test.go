package knowledge_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cairn-mcp/cairn/internal/embed"
	"github.com/cairn-mcp/cairn/knowledge"
)

// An agent records what it learns: entities (an error, a service), episodes (what happened,
// mentioning them) and facts between entities; later it searches the graph by meaning.
func Example() {
	ctx := context.Background()
	// The built-in embedder needs no network; its vectors match the migrated vector(768)
	// columns. It hashes words and spellings, so "meaning" here is shared wording; an Ollama
	// model gives search by meaning proper.
	emb, err := embed.NewBuiltin(768)
	if err != nil {
		log.Fatal(err)
	}
	store := knowledge.New(examplePool(), knowledge.Options{Embedder: emb})

	errType := knowledge.EntityRef{Name: "ModuleNotFoundError", Type: "error"}
	dashboard := knowledge.EntityRef{Name: "dashboard", Type: "service"}
	summary := "Python cannot import a module that is not installed"
	if _, err := store.UpsertEntity(ctx, knowledge.EntityInput{Name: errType.Name, Type: errType.Type, Summary: &summary}); err != nil {
		log.Fatal(err)
	}
	ep, err := store.AddEpisode(ctx, knowledge.EpisodeInput{
		Name:     "dashboard crash",
		Type:     "error",
		Content:  "ModuleNotFoundError: No module named 'numpy' when the dashboard starts",
		Mentions: []knowledge.EntityRef{errType, dashboard}, // dashboard is created, named with its type
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("episode mentions %d entities, embedding %s\n", len(ep.Mentions), ep.Embedding)
	if _, err := store.Relate(ctx, knowledge.RelationInput{
		Source: errType, Type: "fixed_by", Target: knowledge.EntityRef{Name: "pin numpy<2", Type: "fix"},
		Fact: "pinning numpy<2 fixed the dashboard's ModuleNotFoundError", EpisodeID: ep.ID,
	}); err != nil {
		log.Fatal(err)
	}

	// Writes return before their text is embedded: River jobs run EmbedPending in a server.
	// Without them, run it until nothing is left.
	embedded := 0
	for {
		st, err := store.EmbedPending(ctx, knowledge.EmbedOptions{})
		if err != nil {
			log.Fatal(err)
		}
		embedded += st.Embedded
		if !st.More {
			break
		}
	}
	fmt.Println("embedded", embedded)

	res, err := store.Search(ctx, knowledge.SearchQuery{Query: "module not found error", Mode: knowledge.ModeSemantic, Limit: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("searched by", res.Model)
	for _, h := range res.Results {
		fmt.Printf("%s %q (%s)\n", h.Kind, h.Name, h.Type)
	}

	e, err := store.GetEntity(ctx, errType, false)
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range e.Relations {
		fmt.Printf("%s %s %s: %s\n", r.Source, r.Type, r.Target, r.Fact)
	}
	// Output:
	// episode mentions 2 entities, embedding pending
	// embedded 4
	// searched by builtin/hashing-v1/768
	// entity "ModuleNotFoundError" (error)
	// episode "dashboard crash" (error)
	// ModuleNotFoundError fixed_by pin numpy<2: pinning numpy<2 fixed the dashboard's ModuleNotFoundError
}

// A fact that stops being true is replaced, not lost: the old one is kept with invalid_at set,
// so the graph can tell what was true when.
func ExampleStore_Relate() {
	ctx := context.Background()
	store := knowledge.New(examplePool(), knowledge.Options{}) // no embedder: writes and reads need none

	dashboard := knowledge.EntityRef{Name: "dashboard", Type: "service"}
	numpy := knowledge.EntityRef{Name: "numpy", Type: "library"}
	for _, fact := range []string{"the dashboard needs numpy 1.26", "the dashboard needs numpy 2.1"} {
		w, err := store.Relate(ctx, knowledge.RelationInput{Source: dashboard, Type: "depends_on", Target: numpy, Fact: fact})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("created %v, replaced %d\n", w.Created, len(w.Invalidated))
	}

	e, err := store.GetEntity(ctx, dashboard, true) // true: ended facts too
	if err != nil {
		log.Fatal(err)
	}
	for _, r := range e.Relations {
		fmt.Printf("%q current=%v\n", r.Fact, r.InvalidAt == nil)
	}
	// Output:
	// created true, replaced 0
	// created true, replaced 1
	// "the dashboard needs numpy 2.1" current=true
	// "the dashboard needs numpy 1.26" current=false
}
