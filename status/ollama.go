package status

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
)

// probeModel returns what Ollama said of the model of i: the probe already made of it, else a
// new one, added to es.
func (c *collector) probeModel(ctx context.Context, es *Embedder, i embed.Info) (*Ollama, error) {
	for k := range es.Ollama {
		if es.Ollama[k].Model == i.Model {
			return &es.Ollama[k], nil
		}
	}
	host := c.opts.Embed.Host
	o, err := embed.NewOllama(embed.Options{Provider: embed.ProviderOllama, Host: host, Model: i.Model, Dimensions: i.Dimensions})
	if err != nil {
		return nil, settingsError{err}
	}
	h, timeout := redactHost(host), c.opts.ProbeTimeout
	st := Ollama{Host: h.shown, Model: o.Info().Model}
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := o.Probe(pctx); err != nil {
		st.Error = h.probeMessage(err, timeout)
	} else {
		st.OK = true
	}
	es.Ollama = append(es.Ollama, st)
	return &es.Ollama[len(es.Ollama)-1], nil
}

// ollamaHost is Ollama's address as it may be shown, and the form of it to hide in messages when
// it carries a password (a reverse proxy's basic auth); secret is "" when none.
type ollamaHost struct{ shown, secret string }

func redactHost(host string) ollamaHost {
	h := strings.TrimSpace(host)
	if h == "" {
		return ollamaHost{shown: "http://127.0.0.1:11434 (default)"}
	}
	if !strings.Contains(h, "://") {
		h = "http://" + h
	}
	u, err := url.Parse(h)
	if err != nil {
		return ollamaHost{shown: "(unparsable Ollama host)", secret: host}
	}
	if _, has := u.User.Password(); has {
		return ollamaHost{shown: u.Redacted(), secret: u.String()}
	}
	return ollamaHost{shown: u.String()}
}

// probeMessage words a failed probe without the password the host may carry.
func (h ollamaHost) probeMessage(err error, timeout time.Duration) string {
	msg := err.Error()
	if errors.Is(err, context.DeadlineExceeded) {
		msg = fmt.Sprintf("Ollama at %s did not answer within %s (--probe-timeout)", h.shown, timeout)
	}
	if h.secret != "" {
		msg = strings.ReplaceAll(msg, h.secret, h.shown)
	}
	return msg
}
