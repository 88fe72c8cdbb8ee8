// Package embedtest runs an in-process stand-in for an Ollama server on loopback. It speaks
// Ollama's real wire format for /api/embed, /api/chat, /api/tags, /api/show and /api/version (and
// HEAD /), so the official client library is exercised, and has knobs for the failures cairn must
// survive. Chat answers come from a script the test sets (SetChat).
// Vectors are deterministic (the built-in hashing embedder over the exact input received), so
// equal inputs get equal vectors and similar inputs similar ones.
package embedtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	"github.com/cairn-mcp/cairn/internal/embed"
)

// Version is what /api/version reports.
const Version = "0.17.4"

// Request is one /api/embed call as the server received it.
type Request struct {
	// Model is the model asked for.
	Model string
	// Input is the list of texts, prefixes included.
	Input []string
	// Truncate is the request's truncate flag; nil when the client left it out (Ollama then truncates).
	Truncate *bool
}

// Server is the stand-in Ollama. All knobs are safe to change while requests are in flight.
type Server struct {
	// URL is the base URL to use as Options.Host or OLLAMA_HOST.
	URL string

	srv *httptest.Server

	mu          sync.Mutex
	models      map[string]int // canonical name → dimensions
	failNext    int
	failStatus  int
	failMessage string
	delay       time.Duration
	maxChars    int
	unreachable bool
	unloaded    map[string]bool // models not loaded now (all are loaded until Unload)
	loadDelay   time.Duration
	inFlight    int // /api/embed calls being answered, delays included
	maxInFlight int
	calls       int
	inputs      int
	requests    []Request
	chat        chatState
}

// maxRecorded bounds the remembered requests so long benchmarks do not grow without limit.
const maxRecorded = 4096

// New starts a stand-in on 127.0.0.1 serving nomic-embed-text at 768 dimensions. Close it when done.
func New() *Server {
	s := &Server{models: map[string]int{canonical(embed.DefaultModel): 768}, unloaded: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("HEAD /{$}", s.root)
	mux.HandleFunc("GET /{$}", s.root)
	mux.HandleFunc("GET /api/version", s.version)
	mux.HandleFunc("HEAD /api/version", s.version)
	mux.HandleFunc("GET /api/tags", s.tags)
	mux.HandleFunc("HEAD /api/tags", s.tags)
	mux.HandleFunc("POST /api/show", s.show)
	mux.HandleFunc("GET /api/ps", s.ps)
	mux.HandleFunc("POST /api/embed", s.embed)
	mux.HandleFunc("POST /api/chat", s.chatHandler)
	s.srv = httptest.NewServer(s.gate(mux))
	s.URL = s.srv.URL
	return s
}

// Close shuts the server down and waits for requests in flight.
func (s *Server) Close() { s.srv.Close() }

// SetModel makes a model available with the given dimensions (replacing its size if present);
// giving a configured model another size is how tests get wrong-dimension answers.
func (s *Server) SetModel(name string, dims int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models[canonical(name)] = dims
}

// RemoveModel makes a model missing: /api/embed and /api/show answer 404 as Ollama does.
func (s *Server) RemoveModel(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.models, canonical(name))
}

// FailNext makes the next n /api/embed calls answer HTTP 500.
func (s *Server) FailNext(n int) {
	s.FailNextWith(n, http.StatusInternalServerError, "llama runner process has terminated")
}

// FailNextWith makes the next n /api/embed calls answer the given status and error message.
func (s *Server) FailNextWith(n, status int, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failNext, s.failStatus, s.failMessage = n, status, message
}

// SetDelay delays every call by d (cut short if the client goes away), to simulate a slow model.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = d
}

// SetMaxInputChars sets the model's "context length" in characters (0 = unlimited). A longer input
// fails the whole batch with Ollama's 400 when truncate is false, and is cut silently otherwise.
func (s *Server) SetMaxInputChars(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxChars = n
}

// SetUnreachable makes every request fail at the connection level (the connection is closed
// without an answer), like an Ollama that has gone away, until called with false.
func (s *Server) SetUnreachable(down bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unreachable = down
}

// Unload unloads every model, as Ollama does minutes after its last use: the next /api/embed
// call of a model loads it, which takes the load delay (SetLoadDelay) first.
func (s *Server) Unload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for m := range s.models {
		s.unloaded[m] = true
	}
}

// SetLoadDelay sets how long the first /api/embed call of an unloaded model takes to load it.
func (s *Server) SetLoadDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loadDelay = d
}

// MaxInFlight returns the most /api/embed calls answered at once since the last ResetMaxInFlight
// (or since the start), delays included.
func (s *Server) MaxInFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight
}

// ResetMaxInFlight starts counting MaxInFlight again from the calls in flight now.
func (s *Server) ResetMaxInFlight() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.maxInFlight = s.inFlight
}

// Calls returns how many /api/embed calls were received (failed ones included).
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Inputs returns how many texts all /api/embed calls carried.
func (s *Server) Inputs() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inputs
}

// Requests returns a copy of the most recent /api/embed requests (up to 4096), oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Reset clears the counters and recorded requests (chat requests too), leaving the knobs as
// they are.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls, s.inputs, s.requests = 0, 0, nil
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	s.chat.requests = nil
}

// gate applies the connection-level knobs shared by every endpoint.
func (s *Server) gate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		down, delay := s.unreachable, s.delay
		if r.URL.Path == "/api/embed" {
			s.inFlight++
			s.maxInFlight = max(s.maxInFlight, s.inFlight)
			defer func() {
				s.mu.Lock()
				s.inFlight--
				s.mu.Unlock()
			}()
		}
		s.mu.Unlock()
		if down {
			if hj, ok := w.(http.Hijacker); ok {
				if conn, _, err := hj.Hijack(); err == nil {
					conn.Close()
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		if delay > 0 {
			// Read the body first: net/http only notices a client hanging up (and cancels
			// r.Context) once the body is consumed, and a stand-in that outlives its client would
			// stall Close.
			body, err := io.ReadAll(r.Body)
			if err != nil {
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) root(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprint(w, "Ollama is running")
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"version": Version})
}

func (s *Server) tags(w http.ResponseWriter, r *http.Request) {
	type details struct {
		Format            string   `json:"format"`
		Family            string   `json:"family"`
		Families          []string `json:"families"`
		ParameterSize     string   `json:"parameter_size"`
		QuantizationLevel string   `json:"quantization_level"`
	}
	type model struct {
		Name       string    `json:"name"`
		Model      string    `json:"model"`
		ModifiedAt time.Time `json:"modified_at"`
		Size       int64     `json:"size"`
		Digest     string    `json:"digest"`
		Details    details   `json:"details"`
	}
	s.mu.Lock()
	list := make([]model, 0, len(s.models))
	for name := range s.models {
		list = append(list, model{
			Name: name, Model: name, ModifiedAt: time.Unix(0, 0).UTC(), Size: 274302450,
			Digest:  fmt.Sprintf("%064x", len(name)),
			Details: details{Format: "gguf", Family: "nomic-bert", Families: []string{"nomic-bert"}, ParameterSize: "137M", QuantizationLevel: "F16"},
		})
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}

// ps lists the models loaded now, as /api/ps does.
func (s *Server) ps(w http.ResponseWriter, r *http.Request) {
	type model struct {
		Name      string    `json:"name"`
		Model     string    `json:"model"`
		Size      int64     `json:"size"`
		ExpiresAt time.Time `json:"expires_at"`
	}
	s.mu.Lock()
	list := []model{}
	for name := range s.models {
		if !s.unloaded[name] {
			list = append(list, model{Name: name, Model: name, Size: 274302450, ExpiresAt: time.Now().Add(5 * time.Minute).UTC()})
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"models": list})
}

func (s *Server) show(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Name  string `json:"name"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	name := req.Model
	if name == "" {
		name = req.Name
	}
	if name == "" {
		writeError(w, http.StatusBadRequest, "model is required")
		return
	}
	s.mu.Lock()
	dims, ok := s.models[canonical(name)]
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", name))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"details": map[string]any{"format": "gguf", "family": "nomic-bert", "families": []string{"nomic-bert"}},
		"model_info": map[string]any{
			"general.architecture":        "nomic-bert",
			"nomic-bert.embedding_length": dims,
			"nomic-bert.context_length":   2048,
		},
		"capabilities": []string{"embedding"},
	})
}

func (s *Server) embed(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string `json:"model"`
		Input    any    `json:"input"`
		Truncate *bool  `json:"truncate"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	// Ollama accepts a single string or a list of strings.
	var input []string
	switch in := req.Input.(type) {
	case string:
		if in != "" {
			input = []string{in}
		}
	case []any:
		for _, v := range in {
			str, ok := v.(string)
			if !ok {
				writeError(w, http.StatusBadRequest, "invalid input type")
				return
			}
			input = append(input, str)
		}
	case nil:
	default:
		writeError(w, http.StatusBadRequest, "invalid input type")
		return
	}

	s.mu.Lock()
	s.calls++
	s.inputs += len(input)
	if len(s.requests) == maxRecorded {
		s.requests = append(s.requests[:0], s.requests[1:]...)
	}
	s.requests = append(s.requests, Request{Model: req.Model, Input: input, Truncate: req.Truncate})
	fail := s.failNext > 0
	status, message := s.failStatus, s.failMessage
	if fail {
		s.failNext--
	}
	dims, ok := s.models[canonical(req.Model)]
	maxChars := s.maxChars
	load := time.Duration(0)
	if ok && !fail && s.unloaded[canonical(req.Model)] {
		load = s.loadDelay
	}
	s.mu.Unlock()

	if fail {
		writeError(w, status, message)
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model '%s' not found", req.Model))
		return
	}
	if load > 0 {
		t := time.NewTimer(load)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return // the load is abandoned with the call, as Ollama abandons it
		}
	}
	s.mu.Lock()
	delete(s.unloaded, canonical(req.Model))
	s.mu.Unlock()
	truncate := req.Truncate == nil || *req.Truncate
	b, err := embed.NewBuiltin(dims)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	vecs := make([][]float32, len(input))
	for i, text := range input {
		if maxChars > 0 && len(text) > maxChars {
			if !truncate {
				// The runner's message, passed through as a 400 for the whole batch.
				writeError(w, http.StatusBadRequest, "the input length exceeds the context length")
				return
			}
			text = text[:maxChars]
		}
		if strings.TrimSpace(text) == "" {
			// A real model still returns a vector for blank input; any fixed unit vector will do.
			v := make([]float32, dims)
			v[0] = 1
			vecs[i] = v
			continue
		}
		out, err := b.Embed(context.WithoutCancel(r.Context()), embed.Document, []string{text})
		if err != nil {
			writeError(w, http.StatusInternalServerError, err.Error())
			return
		}
		vecs[i] = out[0]
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"model":             req.Model,
		"embeddings":        vecs,
		"total_duration":    int64(1000),
		"load_duration":     int64(100),
		"prompt_eval_count": len(input),
	})
}

// canonical applies Ollama's name defaults so "nomic-embed-text" and "nomic-embed-text:latest" are
// one model.
func canonical(name string) string {
	name = strings.ToLower(strings.TrimSpace(name))
	name = strings.TrimPrefix(name, "registry.ollama.ai/")
	name = strings.TrimPrefix(name, "library/")
	last := name[strings.LastIndex(name, "/")+1:]
	if !strings.Contains(last, ":") {
		name += ":latest"
	}
	return name
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// writeError answers with Ollama's error shape: {"error": "..."}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}
