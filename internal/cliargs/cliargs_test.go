package cliargs

import (
	"errors"
	"io"
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

// run runs `app cmd args...` and returns what Interspersed made of it and the flags' values.
func run(t *testing.T, args ...string) (pos []string, url string, list bool, err error) {
	t.Helper()
	app := &cli.App{Name: "cairn", Writer: io.Discard, Commands: []*cli.Command{{
		Name:  "call",
		Flags: []cli.Flag{&cli.StringFlag{Name: "url"}, &cli.BoolFlag{Name: "list"}},
		Action: func(c *cli.Context) error {
			if FullName(c) != "cairn call" {
				t.Errorf("FullName = %q", FullName(c))
			}
			pos, err = Interspersed(c)
			url, list = c.String("url"), c.Bool("list")
			return nil
		},
	}}}
	if rerr := app.Run(append([]string{"cairn", "call"}, args...)); rerr != nil {
		t.Fatal(rerr)
	}
	return pos, url, list, err
}

func TestInterspersed(t *testing.T) {
	pos, url, list, err := run(t, "query", "--url", "http://h", "sql=1", "--list", "-", "--", "--url=x")
	if err != nil || !slices.Equal(pos, []string{"query", "sql=1", "-", "--url=x"}) || url != "http://h" || !list {
		t.Errorf("got %q, url %q, list %t, %v", pos, url, list, err)
	}
	if _, url, _, err = run(t, "q", "--url=http://x"); err != nil || url != "http://x" {
		t.Errorf("--url=: %q, %v", url, err)
	}
	if _, _, _, err = run(t, "q", "--help"); !errors.Is(err, ErrHelp) {
		t.Errorf("--help: %v", err)
	}
	for _, bad := range [][]string{{"q", "--nope"}, {"q", "--url"}} {
		if _, _, _, err = run(t, bad...); err == nil || errors.Is(err, ErrHelp) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
