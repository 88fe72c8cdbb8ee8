package assistant

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ollama/ollama/api"
)

// OllamaURL reads Ollama's address as Ollama itself reads OLLAMA_HOST (envconfig.Host), so that
// one setting serves both: the scheme defaults to http, the port to 11434 (80 or 443 with an
// explicit scheme), the host to 127.0.0.1.
func OllamaURL(s string) *url.URL {
	defaultPort := "11434"
	s = strings.TrimSpace(s)
	scheme, hostport, ok := strings.Cut(s, "://")
	switch {
	case !ok:
		scheme, hostport = "http", s
		if s == "ollama.com" {
			scheme, hostport = "https", "ollama.com:443"
		}
	case scheme == "http":
		defaultPort = "80"
	case scheme == "https":
		defaultPort = "443"
	}
	hostport, path, _ := strings.Cut(hostport, "/")
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		host, port = "127.0.0.1", defaultPort
		if ip := net.ParseIP(strings.Trim(hostport, "[]")); ip != nil {
			host = ip.String()
		} else if hostport != "" {
			host = hostport
		}
	}
	if n, err := strconv.ParseInt(port, 10, 32); err != nil || n > 65535 || n < 0 {
		port = defaultPort
	}
	return &url.URL{Scheme: scheme, Host: net.JoinHostPort(host, port), Path: path}
}

// Explain says what to do about a failure to get an answer from model at host: pull the
// model, choose one that calls tools, start Ollama; else err's own message.
func Explain(err error, model string, host *url.URL) string {
	var se api.StatusError
	var ne net.Error
	var oe *net.OpError
	switch {
	case errors.As(err, &se) && se.StatusCode == http.StatusNotFound:
		return fmt.Sprintf("Ollama at %s does not have the model %q: pull it (`ollama pull %s`) or choose another with --model / CAIRN_CHAT_MODEL", host, model, model)
	case errors.As(err, &se) && strings.Contains(se.ErrorMessage, "does not support tools"):
		return fmt.Sprintf("the model %q cannot call tools: choose one that can with --model (e.g. %s, qwen2.5)", model, DefaultModel)
	case errors.As(err, &oe) && oe.Op == "dial", errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("Ollama is not answering at %s: start it (`ollama serve`) or point --ollama-host / OLLAMA_HOST at it (%v)", host, err)
	}
	return err.Error()
}
