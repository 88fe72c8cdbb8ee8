package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

// runFairness measures what another caller sees while one caller runs 30 slow calls (issue 15):
// the latency of its point lookups and what /readyz answers, with the per-caller limit off
// (as before it existed) and at its default.
func runFairness(ctx context.Context, bin, url string) error {
	fmt.Printf("\n## Fair under load (issue 15)\n\n")
	fmt.Println("One `cairn serve --transport http` (pool of 10), two static tokens. Caller A starts 30 concurrent `query` calls of `SELECT pg_sleep(4)`; half a second later caller B makes 50 point lookups one after another, and /readyz is asked.")
	fmt.Println()
	fmt.Println("| per-caller limit | B: p50 | B: p99 | B: slowest | /readyz during the load | A's calls that ran / were refused |")
	fmt.Println("|---|---|---|---|---|---|")
	for _, c := range []struct {
		name string
		args []string
	}{
		{"off (`--max-calls-per-caller 1000`, as before)", []string{"--max-calls-per-caller", "1000"}},
		{"default (half the pool: 5)", nil},
	} {
		if err := fairnessRun(ctx, bin, url, c.name, c.args); err != nil {
			return err
		}
	}
	return nil
}

func fairnessRun(ctx context.Context, bin, url, name string, extra []string) error {
	base, cmd, err := serveHTTP(ctx, bin, []string{"CAIRN_AUTH_TOKENS=a:admin:tok-a,b:admin:tok-b", "CAIRN_LOG_LEVEL=error"},
		append([]string{"--database-url", url, "--embedder", "builtin"}, extra...)...)
	if err != nil {
		return err
	}
	defer stop(cmd)
	a, err := bearerSession(ctx, base, "tok-a")
	if err != nil {
		return err
	}
	defer a.Close()
	b, err := bearerSession(ctx, base, "tok-b")
	if err != nil {
		return err
	}
	defer b.Close()

	var wg sync.WaitGroup
	var mu sync.Mutex
	ran, refused := 0, 0
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := a.CallTool(ctx, &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "SELECT pg_sleep(4)"}})
			mu.Lock()
			defer mu.Unlock()
			if err == nil && !res.IsError {
				ran++
			} else {
				refused++
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	ready := "?"
	go func() {
		resp, err := http.Get(base + "/readyz")
		if err != nil {
			return
		}
		defer resp.Body.Close()
		var v map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&v) // a body that is not JSON shows as <nil> status
		mu.Lock()
		ready = fmt.Sprintf("%d %v, pool %v", resp.StatusCode, v["status"], v["pool"])
		mu.Unlock()
	}()
	var lat []time.Duration
	for i := range 50 {
		t0 := time.Now()
		res, err := b.CallTool(ctx, &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "SELECT id FROM bench_items WHERE id = $1", "params": []any{i + 1}}})
		if err != nil || res.IsError {
			return fmt.Errorf("caller B: %v %v", err, res)
		}
		lat = append(lat, time.Since(t0))
	}
	wg.Wait()
	slices.Sort(lat)
	mu.Lock()
	defer mu.Unlock()
	fmt.Printf("| %s | %s | %s | %s | %s | %d / %d |\n", name, ms(lat[len(lat)/2]), ms(lat[len(lat)*99/100]), ms(lat[len(lat)-1]), ready, ran, refused)
	return nil
}

// bearerSession connects the go-sdk client over Streamable HTTP with a bearer token.
func bearerSession(ctx context.Context, base, token string) (*sdk.ClientSession, error) {
	hc := &http.Client{Transport: bearer{token}}
	return sdk.NewClient(&sdk.Implementation{Name: "cairn-bench", Version: "1"}, nil).
		Connect(ctx, &sdk.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc, MaxRetries: -1}, nil)
}

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}
