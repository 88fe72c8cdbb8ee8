package main

import (
	"fmt"
	"net/url"
	"time"

	"github.com/cairn-mcp/cairn/internal/healthcheck"
	"github.com/urfave/cli/v2"
)

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
			&cli.StringFlag{Name: "url", Value: healthcheck.DefaultURL, EnvVars: []string{"CAIRN_HEALTHCHECK_URL"}, Usage: "URL to GET (http or https)"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Second, Usage: "longest the whole probe may take"},
		},
		Action: runHealthcheck,
	}
}

func runHealthcheck(c *cli.Context) error {
	if c.Args().Present() {
		return cli.Exit(fmt.Sprintf("unexpected argument %q: the URL is given with --url", c.Args().First()), 2)
	}
	target := c.String("url")
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return cli.Exit(fmt.Sprintf("--url %q: want an http:// or https:// URL, e.g. %s", target, healthcheck.DefaultURL), 2)
	}
	timeout := c.Duration("timeout")
	if timeout <= 0 {
		return cli.Exit("--timeout must be positive", 2)
	}
	st, err := healthcheck.Probe(c.Context, target, timeout, "cairn-healthcheck/"+cairnVersion())
	if err != nil {
		return cli.Exit("unhealthy: "+err.Error(), 1)
	}
	fmt.Fprintf(c.App.Writer, "healthy: %s answered %s\n", target, st)
	return nil
}
