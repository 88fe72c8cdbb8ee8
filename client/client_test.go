package client

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func TestArguments(t *testing.T) {
	for _, tc := range []struct {
		pairs []string
		want  string
	}{
		{nil, `{}`},
		{[]string{"sql=SELECT 1", "limit=5", "exact=true", `name="5"`, "tags=[1,2]"}, `{"sql":"SELECT 1","limit":5,"exact":true,"name":"5","tags":[1,2]}`},
		{[]string{"q=a=b"}, `{"q":"a=b"}`},
	} {
		got, err := Arguments("", false, tc.pairs, nil)
		if err != nil || string(got) != tc.want {
			t.Errorf("%q: got %s, %v; want %s", tc.pairs, got, err, tc.want)
		}
	}
	for _, bad := range [][]string{{"novalue"}, {"=x"}, {"a=1", "a=2"}} {
		if _, err := Arguments("", false, bad, nil); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
	if got, err := Arguments("-", true, nil, strings.NewReader(` {"sql": "SELECT 1"} `)); err != nil || string(got) != `{"sql": "SELECT 1"}` {
		t.Errorf("--json -: %s, %v", got, err)
	}
	for _, bad := range []string{`[1]`, `null`, `{`} {
		if _, err := Arguments(bad, true, nil, nil); err == nil || !strings.Contains(err.Error(), "want one JSON object") {
			t.Errorf("--json %s: %v", bad, err)
		}
	}
	if _, err := Arguments(`{}`, true, []string{"a=1"}, nil); err == nil {
		t.Error("--json and pairs together: no error")
	}
}

func TestEndpoint(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":      "http://127.0.0.1:8080/mcp",
		"127.0.0.1:8080/":            "http://127.0.0.1:8080/mcp",
		"https://cairn.example/mcp/": "https://cairn.example/mcp",
		"http://h:1/base/sse":        "http://h:1/base/sse",
	} {
		got, sse, err := Endpoint(in)
		if err != nil || got != want || sse != strings.HasSuffix(want, "/sse") {
			t.Errorf("%s: %s %t %v; want %s", in, got, sse, err, want)
		}
	}
	for _, bad := range []string{"ftp://h/x", "http://", "://"} {
		if _, _, err := Endpoint(bad); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"query", "execute", "knowledge_search", "checkpoint_load"}
	for in, want := range map[string]string{"qury": "query", "search": "knowledge_search", "QUERY": "query", "zz": "", "nothing_like_it": ""} {
		if got := Closest(in, names); got != want {
			t.Errorf("Closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOutput(t *testing.T) {
	// The text's key order and digits are kept when it is the structured result.
	res := &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: `{"b":1,"a":12345678901234567890}`}},
		StructuredContent: map[string]any{"a": 12345678901234567890.0, "b": 1.0}}
	if got := string(Output(res)); got != "{\n  \"b\": 1,\n  \"a\": 12345678901234567890\n}" {
		t.Errorf("got %s", got)
	}
	res = &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "summary"}}, StructuredContent: map[string]any{"n": 1}}
	if got := string(Output(res)); got != "{\n  \"n\": 1\n}" {
		t.Errorf("got %s", got)
	}
	res = &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: "bad sql"}}, IsError: true}
	if got := string(Output(res)); got != "bad sql" {
		t.Errorf("got %s", got)
	}
}

func TestBearerTransportRemembersARefusal(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer right" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	for token, want := range map[string]int32{"right": 0, "wrong": http.StatusUnauthorized} {
		rt := &bearerTransport{token: token, base: http.DefaultTransport}
		resp, err := (&http.Client{Transport: rt}).Get(srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got := rt.refused.Load(); got != want {
			t.Errorf("token %s: refused %d, want %d", token, got, want)
		}
	}
}
