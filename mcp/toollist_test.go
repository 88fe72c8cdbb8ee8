package mcp_test

import (
	"context"
	"encoding/json"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/config"
	"github.com/cairn-mcp/cairn/internal/testdb"
)

// toolListBudget is the most bytes the whole tools/list may take: every conversation carries it
// in its model's context (66 KB, about 17,000 tokens, before descriptions and result schemas
// were cut). `make bench BENCHARGS=-tools-only` prints the size per toolset.
const toolListBudget = 25_000

// TestToolListSize: the tool list of every toolset, and of all together, stays within budget.
func TestToolListSize(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	sizes := map[string]int{}
	for _, ts := range append([]string{"all"}, config.Toolsets...) {
		cfg := &config.Config{}
		if ts != "all" {
			cfg.Toolsets = []string{ts}
		}
		srv := newServer(t, db, cfg)
		st, ct := sdk.NewInMemoryTransports()
		ss, err := srv.SDK().Connect(context.Background(), st, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ss.Close() })
		cs, err := sdk.NewClient(&sdk.Implementation{Name: "size", Version: "1"}, nil).Connect(context.Background(), ct, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cs.Close() })
		res, err := cs.ListTools(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		sizes[ts] = len(b)
		t.Logf("--toolsets %s: %d tools, %d bytes", ts, len(res.Tools), len(b))
	}
	if sizes["all"] > toolListBudget {
		t.Errorf("tools/list of every toolset is %d bytes, over the budget of %d: say less, or say it once", sizes["all"], toolListBudget)
	}
}
