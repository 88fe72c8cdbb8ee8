package mcp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// One caller's 30 slow calls take at most its share of the pool: another caller's calls, the
// health check and the background jobs go on (30 such calls made another caller wait 11.5 s
// and /readyz report the database unavailable before).
func TestOneCallerCannotStarveTheOthers(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	base, _, _ := httpProcess(t, []string{"CAIRN_AUTH_TOKENS=hog:admin:tok-hog,other:admin:tok-other"},
		"--database-url", db.URL, "--embedder", "builtin", "--embed-sweep", "500ms")
	hog, _, err := connectAs(base, "http", "tok-hog")
	if err != nil {
		t.Fatal(err)
	}
	defer hog.Close()
	other, _, err := connectAs(base, "http", "tok-other")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()

	var wg sync.WaitGroup
	var mu sync.Mutex
	var outcomes []string
	start := time.Now()
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := hog.CallTool(context.Background(), &sdk.CallToolParams{Name: "query", Arguments: map[string]any{"sql": "SELECT pg_sleep(4)"}})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				outcomes = append(outcomes, "protocol error: "+err.Error())
			case !res.IsError:
				outcomes = append(outcomes, "ok")
			default:
				outcomes = append(outcomes, res.Content[0].(*sdk.TextContent).Text)
			}
		}()
	}
	// The hog's calls hold their slots (half the pool): from here on the others wait behind them.
	waitFor(t, 30*time.Second, "the slow calls running", func() (bool, string) {
		var n int
		err := db.Pool.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE '%pg_sleep(4)%' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&n)
		return err == nil && n >= 5, fmt.Sprintf("%d running (%v)", n, err)
	})

	// The other caller is answered at once, not after the slow calls.
	var slowest time.Duration
	for range 20 {
		t0 := time.Now()
		if got := scalar(t, other, "SELECT 1"); got != "1" {
			t.Fatalf("other caller: %s", got)
		}
		slowest = max(slowest, time.Since(t0))
	}
	t.Logf("the other caller's slowest of 20 calls during the load: %s", slowest)
	if slowest > 2*time.Second {
		t.Errorf("the other caller waited %s behind the slow calls", slowest)
	}
	// The health check says ready, and that the pool is busy rather than the database gone.
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	var ready map[string]any
	json.NewDecoder(resp.Body).Decode(&ready)
	resp.Body.Close()
	if resp.StatusCode != 200 || ready["status"] != "ready" {
		t.Errorf("/readyz during the load: %d %v", resp.StatusCode, ready)
	}
	// An embed job queued during the load completes.
	ok(t, other, "knowledge_add_episode", map[string]any{"content": "written while another caller hogged the pool"})
	waitFor(t, 3*time.Second, "the episode embedded during the load", func() (bool, string) {
		st := status(t, other)
		return st.Episodes.Embedded == 1, "pending"
	})
	if time.Since(start) > 4*time.Second {
		t.Errorf("the checks took %s: they may have waited for the slow calls to end", time.Since(start))
	}
	wg.Wait()

	// The hog had its share — half the pool of 10 — and the rest of its calls were refused,
	// saying so and how to raise the limit.
	okCalls := 0
	for _, o := range outcomes {
		switch {
		case o == "ok":
			okCalls++
		case !strings.Contains(o, "5 of 5 calls in flight") || !strings.Contains(o, "--max-calls-per-caller") || !strings.Contains(o, "retry"):
			t.Errorf("a refused call says %q", o)
		}
	}
	if okCalls != 5 {
		t.Errorf("%d of the hog's 30 slow calls ran; want 5 (half the pool)", okCalls)
	}
}

// A caller over its session bound is refused with 429 saying which limit and flag; others are not.
func TestSessionsPerCaller(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	base, _, _ := httpProcess(t, []string{"CAIRN_AUTH_TOKENS=a:admin:tok-a,b:admin:tok-b", "CAIRN_MAX_SESSIONS_PER_CALLER=3"}, "--database-url", db.URL)
	var stops []func()
	defer func() {
		for _, s := range stops {
			s()
		}
	}()
	for range 3 {
		_, stop := openSSE(t, base, "tok-a")
		stops = append(stops, stop)
	}
	req, _ := http.NewRequest("GET", base+"/sse", nil)
	req.Header.Set("Authorization", "Bearer tok-a")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body := make([]byte, 512)
	n, _ := resp.Body.Read(body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(string(body[:n]), "--max-sessions-per-caller") {
		t.Errorf("a fourth session: %d %q", resp.StatusCode, body[:n])
	}
	_, stop := openSSE(t, base, "tok-b") // another caller is not held to a's sessions
	stops = append(stops, stop)
	// A session that ends frees its place.
	stops[0]()
	stops = slices.Delete(stops, 0, 1)
	waitFor(t, 10*time.Second, "a's session freed", func() (bool, string) {
		req, _ := http.NewRequest("GET", base+"/sse", nil)
		req.Header.Set("Authorization", "Bearer tok-a")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return false, resp.Status
		}
		stops = append(stops, func() { resp.Body.Close() })
		return true, ""
	})
}
