package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
)

// defaultHealthcheckURL is what `cairn healthcheck` probes by default: /healthz of the HTTP
// listener the container image starts (serve --addr 0.0.0.0:8080), seen from inside the container.
const defaultHealthcheckURL = "http://127.0.0.1:8080/healthz"

// healthcheckCommand is the container image's HEALTHCHECK: the image has no shell and no curl,
// so cairn probes itself.
func healthcheckCommand() *cli.Command {
	return &cli.Command{
		Name:      "healthcheck",
		Usage:     "probe a running `cairn serve` over HTTP (its /healthz by default): exit 0 if it answers 2xx, 1 otherwise",
		ArgsUsage: " ",
		Description: `Sends one GET to --url and exits 0 if the answer is 2xx within --timeout, 1 otherwise (refused,
timed out, any other status), saying why on stderr. No proxy is used and redirects are not
followed. It needs no database: it is the HEALTHCHECK of the container image, which has no shell
or curl. /healthz says the process serves; /readyz also checks the database.

Examples:
   cairn healthcheck                                          # http://127.0.0.1:8080/healthz
   cairn healthcheck --url http://127.0.0.1:8080/readyz --timeout 5s`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "url", Value: defaultHealthcheckURL, EnvVars: []string{"CAIRN_HEALTHCHECK_URL"}, Usage: "URL to GET (http or https)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "longest the whole probe may take"},
		},
		Action: healthcheck,
	}
}

func healthcheck(c *cli.Context) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("unexpected argument %q: the URL is given with --url", c.Args().First()), 2)
	}
	target := c.String("url")
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cli.Exit(fmt.Sprintf("--url %q: want an http:// or https:// URL, e.g. %s", target, defaultHealthcheckURL), 2)
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return cli.Exit("--timeout must be positive", 2)
	}
	ctx, cancel := context.WithTimeout(c.Context, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return cli.Exit(fmt.Sprintf("--url %q: %v", target, err), 2)
	}
	req.Header.Set("User-Agent", "cairn-healthcheck/"+cairnVersion())
	client := &http.Client{
		// A probe of the process itself: an HTTP(S)_PROXY in the container's environment must
		// not route it elsewhere.
		Transport:     &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return cli.Exit(fmt.Sprintf("unhealthy: %s did not answer within %s", target, timeout), 1)
		}
		return cli.Exit(fmt.Sprintf("unhealthy: %v", err), 1)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		msg := fmt.Sprintf("unhealthy: %s answered %s", target, resp.Status)
		if b := strings.TrimSpace(string(body)); b != "" {
			msg += ": " + b
		}
		return cli.Exit(msg, 1)
	}
	fmt.Fprintf(c.App.Writer, "healthy: %s answered %s\n", target, resp.Status)
	return nil
}
