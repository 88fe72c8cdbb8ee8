// Package healthcheck probes a running cairn over HTTP, for the container image's HEALTHCHECK:
// the image has no shell and no curl, so cairn probes itself.
package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// DefaultURL is what is probed by default: /healthz of the HTTP listener the container image
// starts (serve --addr 0.0.0.0:8080), seen from inside the container.
const DefaultURL = "http://127.0.0.1:8080/healthz"

// Probe sends one GET to target within timeout and returns the answer's status when it is 2xx,
// else an error that says why (refused, timed out, the status and the start of the body). No
// proxy is used and redirects are not followed: it probes the process itself.
func Probe(ctx context.Context, target string, timeout time.Duration, userAgent string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return "", fmt.Errorf("build the request to %s: %w", target, err)
	}
	req.Header.Set("User-Agent", userAgent)
	client := &http.Client{
		// An HTTP(S)_PROXY in the container's environment must not route the probe elsewhere.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("%s did not answer within %s", target, timeout)
		}
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("%s answered %s", target, resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		return "", errors.New(msg)
	}
	return resp.Status, nil
}
