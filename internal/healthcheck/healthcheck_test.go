package healthcheck

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			w.Write([]byte("ok"))
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/slow":
			time.Sleep(200 * time.Millisecond)
		default:
			http.Error(w, "not ready: database", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	ctx := context.Background()
	if st, err := Probe(ctx, srv.URL+"/ok", time.Second, "test"); err != nil || st != "200 OK" {
		t.Errorf("/ok: %q, %v", st, err)
	}
	if _, err := Probe(ctx, srv.URL+"/readyz", time.Second, "test"); err == nil || !strings.Contains(err.Error(), "503 Service Unavailable: not ready: database") {
		t.Errorf("/readyz: %v", err)
	}
	if _, err := Probe(ctx, srv.URL+"/redirect", time.Second, "test"); err == nil || !strings.Contains(err.Error(), "302") {
		t.Errorf("a redirect is not followed: %v", err)
	}
	if _, err := Probe(ctx, srv.URL+"/slow", 20*time.Millisecond, "test"); err == nil || !strings.Contains(err.Error(), "did not answer within 20ms") {
		t.Errorf("/slow: %v", err)
	}
}
