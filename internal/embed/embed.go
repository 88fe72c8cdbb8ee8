// Package embed turns text into vectors for cairn's knowledge graph: an Ollama provider for real
// models and a built-in, network-free hashing embedder for tests and for running without Ollama.
// Errors are typed so that background jobs can tell a retry-later failure (*TransientError) from
// one that no retry will fix (*PermanentError).
package embed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"
)

// Kind says what the texts are for, because retrieval models such as nomic-embed-text embed
// stored documents and search queries with different task prefixes.
type Kind int

const (
	// Document is text to be stored and later found; it is the zero value so that forgetting the
	// kind never silently embeds stored rows as queries.
	Document Kind = iota
	// Query is a search query compared against stored documents.
	Query
)

// String returns "document" or "query" for logs and error messages.
func (k Kind) String() string {
	switch k {
	case Document:
		return "document"
	case Query:
		return "query"
	default:
		return fmt.Sprintf("Kind(%d)", int(k))
	}
}

// Provider names accepted by Options.Provider (and the --embedder flag).
const (
	// ProviderAuto uses Ollama if it answers and has the model, else the built-in embedder.
	ProviderAuto = "auto"
	// ProviderOllama always uses Ollama, even when it is down at start-up (jobs retry until it is back).
	ProviderOllama = "ollama"
	// ProviderBuiltin always uses the deterministic hashing embedder.
	ProviderBuiltin = "builtin"
)

// Info identifies the vectors an Embedder produces; it is stored with every vector so that vectors
// from different models (which are not comparable) are never mixed silently.
type Info struct {
	// Provider is ProviderOllama or ProviderBuiltin.
	Provider string
	// Model is the model name as configured (Ollama) or the hashing scheme's version (builtin).
	Model string
	// Dimensions is the vector length; 0 only for an Ollama model of unknown size that has not
	// answered yet.
	Dimensions int
}

// String formats the Info as provider/model/dimensions for logs.
func (i Info) String() string {
	return fmt.Sprintf("%s/%s/%d", i.Provider, i.Model, i.Dimensions)
}

// Embedder turns texts into vectors. Implementations are safe for concurrent use.
type Embedder interface {
	// Embed returns one L2-normalised vector per text, in order. Kind says whether the texts are
	// documents to store or a query. Empty (or whitespace-only) texts are rejected with a
	// *PermanentError naming their indexes, since there is nothing to find them by.
	Embed(ctx context.Context, kind Kind, texts []string) ([][]float32, error)
	// Info names the provider, model and dimensions, recorded with every vector.
	Info() Info
}

// TransientError is a failure that may go away on its own (Ollama down, overloaded, slow or
// answering 5xx); callers should retry later with backoff.
type TransientError struct {
	// Reason says what went wrong and how to fix it if it persists.
	Reason string
	// Err is the underlying error, if any.
	Err error
}

// Error says the failure is transient, why, and what to do if it lasts.
func (e *TransientError) Error() string {
	if e.Err == nil {
		return "embed (transient): " + e.Reason
	}
	return fmt.Sprintf("embed (transient): %s: %v", e.Reason, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransientError) Unwrap() error { return e.Err }

// PermanentError is a failure that retrying the same call cannot fix (model missing, input too
// long, wrong dimensions); callers should record Reason in a visible failed state.
type PermanentError struct {
	// Reason says what went wrong and how to fix it.
	Reason string
	// Inputs lists the indexes (into the texts given to Embed) of the inputs that can never be
	// embedded; the caller can fail just those and retry the rest. Empty means the failure is not
	// specific to any input, so every input of the call failed.
	Inputs []int
	// Err is the underlying error, if any.
	Err error

	// someInput marks a failure caused by an input the server did not name (Ollama fails a whole
	// batch for one text that is too long); the Ollama embedder resolves it into Inputs.
	someInput bool
}

// Error says the failure is permanent, why, how to fix it, and which inputs are to blame.
func (e *PermanentError) Error() string {
	var b strings.Builder
	b.WriteString("embed (permanent): ")
	b.WriteString(e.Reason)
	if len(e.Inputs) > 0 {
		fmt.Fprintf(&b, " (inputs %v)", e.Inputs)
	}
	if e.Err != nil {
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *PermanentError) Unwrap() error { return e.Err }

// IsTransient reports whether err (or an error it wraps) is a *TransientError.
func IsTransient(err error) bool {
	var t *TransientError
	return errors.As(err, &t)
}

// IsPermanent reports whether err (or an error it wraps) is a *PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Defaults used when the corresponding Options field is zero.
const (
	// DefaultModel is the Ollama model used when none is configured.
	DefaultModel = "nomic-embed-text"
	// DefaultBatchSize bounds one /api/embed call, keeping a request's memory and latency modest.
	DefaultBatchSize = 64
	// DefaultTimeout bounds one batch call: ample for a batch of texts on a loaded model, short
	// enough that a hanging server is noticed in seconds. Loading the model is given
	// DefaultLoadTimeout instead, in a call of its own.
	DefaultTimeout = 30 * time.Second
	// DefaultLoadTimeout bounds the call that loads the model into memory first (Ollama loads
	// on first use and unloads after minutes without calls).
	DefaultLoadTimeout = 2 * time.Minute
	// DefaultProbeTimeout keeps start-up quick when no Ollama is running.
	DefaultProbeTimeout = 2 * time.Second
)

// Options configures New and NewOllama. The zero value means: auto, nomic-embed-text, OLLAMA_HOST.
type Options struct {
	// Provider is ProviderAuto (also when empty), ProviderOllama or ProviderBuiltin.
	Provider string
	// Host is Ollama's base URL (e.g. http://127.0.0.1:11434); empty reads OLLAMA_HOST the way
	// Ollama itself does.
	Host string
	// Model is the Ollama model; empty means DefaultModel.
	Model string
	// Dimensions is the expected vector length. For Ollama, 0 takes the model's known size or
	// learns it from the server; a different size from the server is a *PermanentError. For the
	// built-in embedder, 0 means DefaultBuiltinDimensions.
	Dimensions int
	// BatchSize caps the inputs sent in one /api/embed call; 0 means DefaultBatchSize.
	BatchSize int
	// Timeout bounds one Ollama batch call; 0 means DefaultTimeout. Hitting it is a
	// *TransientError.
	Timeout time.Duration
	// LoadTimeout bounds the call that first loads the model (when it is not loaded, after
	// minutes without calls); 0 means DefaultLoadTimeout, and never less than Timeout.
	LoadTimeout time.Duration
	// ProbeTimeout bounds the start-up check of Ollama in auto mode; 0 means DefaultProbeTimeout.
	ProbeTimeout time.Duration
	// HTTPClient is used for Ollama; nil means a client of its own (timeouts come from Timeout).
	HTTPClient *http.Client
	// Logger receives the provider choice and probe failures; nil discards them.
	Logger *slog.Logger
}

// ForColumns returns o for vector columns of dims dimensions. The built-in embedder is made to
// fit them, and auto takes Ollama only if its model does; an explicit Ollama model of another
// size is let through, so that embedding fails with a message naming `cairn reindex`.
func (o Options) ForColumns(dims int) Options {
	if strings.ToLower(strings.TrimSpace(o.Provider)) != ProviderOllama {
		o.Dimensions = dims
	}
	return o
}

// Choice says why New or Choose picked an embedder, and what Ollama said when it was asked.
type Choice struct {
	// Why is the reason, for logs and status reports.
	Why string
	// Probed is true when Ollama was asked whether it answers and has the model.
	Probed bool
	// ProbeErr is the probe's failure; nil when it answered (or was not probed).
	ProbeErr error
}

// New builds the Embedder that Options.Provider asks for. In auto mode it probes Ollama within
// ProbeTimeout and falls back to the built-in embedder if Ollama does not answer, lacks the model
// or disagrees with Options.Dimensions, logging which was chosen and why.
func New(ctx context.Context, opts Options) (Embedder, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e, ch, err := Choose(ctx, opts)
	if err != nil {
		return nil, err
	}
	ch.Log(log, e)
	return e, nil
}

// Log says which embedder was chosen and why: a warning when Ollama was asked for explicitly
// but does not answer (embed jobs wait and retry; better said now than at the first failed
// job), else one line at info level.
func (ch Choice) Log(log *slog.Logger, e Embedder) {
	switch {
	case ch.ProbeErr != nil && e.Info().Provider == ProviderOllama:
		log.Warn("embedder chosen but not ready", "info", e.Info().String(), "why", ch.Why, "err", ch.ProbeErr)
	case ch.ProbeErr != nil:
		// Falling back to the built-in embedder is a normal outcome; the probe's error is
		// for whoever looks, not a line of its own.
		log.Info("embedder chosen", "info", e.Info().String(), "why", ch.Why)
		log.Debug("Ollama was not usable", "err", ch.ProbeErr)
	default:
		log.Info("embedder chosen", "info", e.Info().String(), "why", ch.Why)
	}
}

// reasonOf is what a probe's failure says to a person: the typed errors' reason (with its fix),
// without the underlying error chain.
func reasonOf(err error) string {
	var t *TransientError
	var p *PermanentError
	switch {
	case errors.As(err, &t):
		return t.Reason
	case errors.As(err, &p):
		return p.Reason
	}
	return err.Error()
}

// Describe is the embedder with the reason it was chosen, in one line.
func (ch Choice) Describe(e Embedder) string {
	return e.Info().String() + " (" + ch.Why + ")"
}

// Choose is New without the logging: it returns the embedder with the reason it was chosen and
// the outcome of asking Ollama, for callers that report them (cairn status).
func Choose(ctx context.Context, opts Options) (Embedder, Choice, error) {
	probeTimeout := opts.ProbeTimeout
	if probeTimeout <= 0 {
		probeTimeout = DefaultProbeTimeout
	}
	probe := func(o *Ollama) error {
		pctx, cancel := context.WithTimeout(ctx, probeTimeout)
		defer cancel()
		return o.Probe(pctx)
	}
	switch strings.ToLower(strings.TrimSpace(opts.Provider)) {
	case ProviderBuiltin:
		b, err := NewBuiltin(opts.Dimensions)
		if err != nil {
			return nil, Choice{}, err
		}
		return b, Choice{Why: "configured"}, nil
	case ProviderOllama:
		o, err := NewOllama(opts)
		if err != nil {
			return nil, Choice{}, err
		}
		return o, Choice{Why: "configured", Probed: true, ProbeErr: probe(o)}, nil
	case "", ProviderAuto:
		o, err := NewOllama(opts)
		if err != nil {
			return nil, Choice{}, err
		}
		perr := probe(o)
		if perr == nil {
			return o, Choice{Why: "auto: Ollama answered at " + o.host + " and has the model", Probed: true}, nil
		}
		if ctx.Err() != nil {
			return nil, Choice{}, fmt.Errorf("embed: choosing a provider: %w", ctx.Err())
		}
		b, err := NewBuiltin(opts.Dimensions)
		if err != nil {
			return nil, Choice{}, err
		}
		return b, Choice{Why: "auto: Ollama not usable (" + reasonOf(perr) + "), using the built-in embedder", Probed: true, ProbeErr: perr}, nil
	default:
		return nil, Choice{}, fmt.Errorf("embed: unknown provider %q; use %s, %s or %s", opts.Provider, ProviderOllama, ProviderBuiltin, ProviderAuto)
	}
}

// normalize scales v to unit length in place. It reports false for a zero or non-finite vector,
// which has no direction and would poison cosine search.
func normalize(v []float32) bool {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	if sum == 0 || math.IsNaN(sum) || math.IsInf(sum, 0) {
		return false
	}
	inv := 1 / math.Sqrt(sum)
	for i, x := range v {
		v[i] = float32(float64(x) * inv)
	}
	return true
}

// emptyInputs returns the indexes of texts with nothing to embed.
func emptyInputs(texts []string) []int {
	var bad []int
	for i, t := range texts {
		if strings.TrimSpace(t) == "" {
			bad = append(bad, i)
		}
	}
	return bad
}

func errEmpty(bad []int) error {
	return &PermanentError{
		Reason: "empty text has no meaning to embed; store a non-blank name, content or summary",
		Inputs: bad,
	}
}
