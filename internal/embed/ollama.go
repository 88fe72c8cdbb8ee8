package embed

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ollama/ollama/api"
	"github.com/ollama/ollama/envconfig"
)

// modelSpec is what cairn knows about a model family: its task prefixes and its native size.
type modelSpec struct {
	name        string // matched as a prefix of the model's base name (no tag, no namespace)
	docPrefix   string
	queryPrefix string
	dims        int
}

// knownModels holds models whose training used task prefixes (without them retrieval quality
// drops noticeably) or whose size is worth knowing before the first call. Unknown models get no
// prefix and learn their size from the server.
var knownModels = []modelSpec{
	{name: "nomic-embed-text", docPrefix: "search_document: ", queryPrefix: "search_query: ", dims: 768},
	{name: "mxbai-embed-large", queryPrefix: "Represent this sentence for searching relevant passages: ", dims: 1024},
	{name: "all-minilm", dims: 384},
}

func lookupModel(model string) modelSpec {
	base := model
	if i := strings.LastIndex(base, "/"); i >= 0 {
		base = base[i+1:]
	}
	base, _, _ = strings.Cut(base, ":")
	base = strings.ToLower(base)
	for _, s := range knownModels {
		if strings.HasPrefix(base, s.name) {
			return s
		}
	}
	return modelSpec{}
}

// Ollama embeds through an Ollama server's /api/embed with the official client. It never lets
// Ollama truncate input: a text too long for the model is a *PermanentError naming it, because a
// silently cut text would be stored as if fully searchable.
type Ollama struct {
	client      *api.Client
	host        string
	model       string
	spec        modelSpec
	batch       int
	timeout     time.Duration // one batch call
	loadTimeout time.Duration // the call that loads the model first
	configured  int           // dimensions asked for by the caller; 0 = accept what the model gives
	dims        atomic.Int64  // expected dimensions: configured, known, or learned from the server

	// warmMu makes one caller at a time load a model that may have been unloaded; lastOK is
	// when a call last succeeded (UnixNano), so the model is loaded for a while after it.
	warmMu sync.Mutex
	lastOK atomic.Int64
}

// coldAfter is how long after its last call a model may have been unloaded: Ollama keeps a
// model loaded for 5 minutes after its last use by default (keep_alive).
const coldAfter = 4 * time.Minute

// pingTimeout bounds the quick questions (is the model loaded?) that tell a hanging Ollama from
// one that is loading a model; never more than the batch timeout.
const pingTimeout = 5 * time.Second

// NewOllama returns an Ollama embedder for opts.Host (or OLLAMA_HOST) and opts.Model. It does not
// contact the server; use Probe for that.
func NewOllama(opts Options) (*Ollama, error) {
	var base *url.URL
	if strings.TrimSpace(opts.Host) == "" {
		base = envconfig.Host()
	} else {
		h := strings.TrimSpace(opts.Host)
		if !strings.Contains(h, "://") {
			h = "http://" + h
		}
		u, err := url.Parse(h)
		if err != nil || u.Host == "" {
			return nil, fmt.Errorf("embed: Ollama host %q is not a URL like http://127.0.0.1:11434", opts.Host)
		}
		base = u
	}
	if opts.Dimensions < 0 {
		return nil, fmt.Errorf("embed: dimensions must be positive, got %d", opts.Dimensions)
	}
	o := &Ollama{
		host:        base.String(),
		model:       opts.Model,
		batch:       opts.BatchSize,
		timeout:     opts.Timeout,
		loadTimeout: opts.LoadTimeout,
		configured:  opts.Dimensions,
	}
	if o.model == "" {
		o.model = DefaultModel
	}
	if o.batch <= 0 {
		o.batch = DefaultBatchSize
	}
	if o.timeout <= 0 {
		o.timeout = DefaultTimeout
	}
	if o.loadTimeout <= 0 {
		o.loadTimeout = DefaultLoadTimeout
	}
	o.loadTimeout = max(o.loadTimeout, o.timeout)
	hc := opts.HTTPClient
	if hc == nil {
		// Not http.DefaultClient: that would share state with the rest of the process. Timeouts
		// are per call through the context.
		hc = &http.Client{}
	}
	o.client = api.NewClient(base, hc)
	o.spec = lookupModel(o.model)
	switch {
	case o.configured > 0:
		o.dims.Store(int64(o.configured))
	case o.spec.dims > 0:
		o.dims.Store(int64(o.spec.dims))
	}
	return o, nil
}

// Info returns provider "ollama", the configured model and the expected dimensions (0 until an
// unknown model has answered once).
func (o *Ollama) Info() Info {
	return Info{Provider: ProviderOllama, Model: o.model, Dimensions: int(o.dims.Load())}
}

// Probe checks that Ollama answers and has the model, and learns or checks the model's dimensions
// from /api/show. Errors are *TransientError (not reachable) or *PermanentError (model missing,
// wrong dimensions).
func (o *Ollama) Probe(ctx context.Context) error {
	if _, err := o.client.Version(ctx); err != nil {
		return o.classify(ctx, "version", err)
	}
	show, err := o.client.Show(ctx, &api.ShowRequest{Model: o.model})
	if err != nil {
		return o.classify(ctx, "show", err)
	}
	for k, v := range show.ModelInfo {
		if !strings.HasSuffix(k, ".embedding_length") {
			continue
		}
		if n, ok := v.(float64); ok && n > 0 {
			return o.checkDims(int(n))
		}
	}
	// Some model formats do not report it; the first /api/embed answer will.
	return nil
}

// Embed sends the texts, prefixed as the model wants for kind, to /api/embed in batches of at
// most BatchSize, with truncation off, and validates every vector.
func (o *Ollama) Embed(ctx context.Context, kind Kind, texts []string) ([][]float32, error) {
	if bad := emptyInputs(texts); len(bad) > 0 {
		return nil, errEmpty(bad)
	}
	prefix := o.spec.docPrefix
	if kind == Query {
		prefix = o.spec.queryPrefix
	}
	if err := o.warm(ctx); err != nil {
		return nil, err
	}
	out := make([][]float32, 0, len(texts))
	// Inputs that can never be embedded are collected across all batches, so that one call names
	// every poison row instead of one per retry.
	var poison *PermanentError
	for start := 0; start < len(texts); start += o.batch {
		end := min(start+o.batch, len(texts))
		input := make([]string, end-start)
		for i, t := range texts[start:end] {
			input[i] = prefix + t
		}
		vecs, err := o.call(ctx, input)
		if err != nil {
			var perr *PermanentError
			if !errors.As(err, &perr) {
				return nil, err
			}
			if perr.someInput {
				err = o.locate(ctx, input, start, perr)
				if !errors.As(err, &perr) {
					return nil, err
				}
			} else {
				for i := range perr.Inputs {
					perr.Inputs[i] += start
				}
			}
			if len(perr.Inputs) == 0 {
				return nil, err
			}
			if poison == nil {
				poison = &PermanentError{Reason: perr.Reason, Err: perr.Err}
			}
			poison.Inputs = append(poison.Inputs, perr.Inputs...)
			continue
		}
		out = append(out, vecs...)
	}
	if poison != nil {
		return nil, poison
	}
	return out, nil
}

// locate finds which inputs of a failed batch are the ones that can never be embedded, because
// Ollama fails a whole batch for one bad input and the caller must not fail the good ones.
func (o *Ollama) locate(ctx context.Context, input []string, offset int, first *PermanentError) error {
	if len(input) == 1 {
		return &PermanentError{Reason: first.Reason, Inputs: []int{offset}, Err: first.Err}
	}
	var bad []int
	for i := range input {
		if _, err := o.call(ctx, input[i:i+1]); err != nil {
			var perr *PermanentError
			if !errors.As(err, &perr) || (!perr.someInput && len(perr.Inputs) == 0) {
				return err
			}
			bad = append(bad, offset+i)
		}
	}
	if len(bad) == 0 {
		// Each input alone went through: the batch failed for a reason of its own (memory?);
		// retrying later is the honest answer.
		return &TransientError{Reason: "Ollama rejected the batch but accepted each input alone", Err: first}
	}
	return &PermanentError{Reason: first.Reason, Inputs: bad, Err: first.Err}
}

// call makes one /api/embed request, bounded by the batch timeout, and validates the answer.
func (o *Ollama) call(ctx context.Context, input []string) ([][]float32, error) {
	return o.callWithin(ctx, input, o.timeout)
}

func (o *Ollama) callWithin(ctx context.Context, input []string, timeout time.Duration) ([][]float32, error) {
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	truncate := false
	resp, err := o.client.Embed(cctx, &api.EmbedRequest{Model: o.model, Input: input, Truncate: &truncate})
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return nil, &TransientError{Reason: fmt.Sprintf("Ollama at %s did not answer within %s", o.host, timeout), Err: err}
		}
		return nil, o.classify(ctx, "embed", err)
	}
	if len(resp.Embeddings) != len(input) {
		return nil, &PermanentError{Reason: fmt.Sprintf("Ollama returned %d vectors for %d inputs with model %q; upgrade Ollama or choose another model", len(resp.Embeddings), len(input), o.model)}
	}
	if err := o.checkDims(len(resp.Embeddings[0])); err != nil {
		return nil, err
	}
	o.lastOK.Store(time.Now().UnixNano())
	want := int(o.dims.Load())
	for i, v := range resp.Embeddings {
		if len(v) != want {
			return nil, o.dimsError(len(v), want)
		}
		// Ollama normalises already; doing it again costs little and protects cosine search from a
		// server or model that does not.
		if !normalize(v) {
			return nil, &PermanentError{Reason: fmt.Sprintf("model %q returned a zero or non-finite vector", o.model), Inputs: []int{i}}
		}
	}
	return resp.Embeddings, nil
}

// Check makes the smallest call that proves embedding works now (for a Guard's probes): it asks
// Ollama whether the model is loaded — a quick question that also tells a hanging server from
// one that answers — and embeds one short text, allowing the load timeout when the model must
// be loaded first and the batch timeout otherwise.
func (o *Ollama) Check(ctx context.Context) error {
	loaded, err := o.loaded(ctx)
	if err != nil {
		return err
	}
	timeout := o.timeout
	if !loaded {
		timeout = o.loadTimeout
	}
	_, err = o.callWithin(ctx, []string{o.spec.docPrefix + "ok"}, timeout)
	return err
}

// warm loads the model before a batch when it may have been unloaded since its last call, with
// the load timeout, so that batch calls can keep a timeout suited to one batch. One caller
// loads; the others wait for it.
func (o *Ollama) warm(ctx context.Context) error {
	if time.Since(time.Unix(0, o.lastOK.Load())) < coldAfter {
		return nil
	}
	o.warmMu.Lock()
	defer o.warmMu.Unlock()
	if time.Since(time.Unix(0, o.lastOK.Load())) < coldAfter {
		return nil // another caller loaded it meanwhile
	}
	loaded, err := o.loaded(ctx)
	if err != nil {
		return err
	}
	if loaded {
		return nil
	}
	_, err = o.callWithin(ctx, []string{o.spec.docPrefix + "ok"}, o.loadTimeout)
	return err
}

// loaded asks Ollama (within pingTimeout) whether the model is loaded now.
func (o *Ollama) loaded(ctx context.Context) (bool, error) {
	wait := min(pingTimeout, o.timeout)
	pctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ps, err := o.client.ListRunning(pctx)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return false, &TransientError{Reason: fmt.Sprintf("Ollama at %s did not answer within %s", o.host, wait), Err: err}
		}
		var se api.StatusError
		if errors.As(err, &se) && se.StatusCode == http.StatusNotFound {
			return false, nil // an Ollama too old to say: treat the model as not loaded
		}
		return false, o.classify(ctx, "ps", err)
	}
	want := canonicalModel(o.model)
	for _, m := range ps.Models {
		if canonicalModel(m.Name) == want || canonicalModel(m.Model) == want {
			return true, nil
		}
	}
	return false, nil
}

// canonicalModel drops the default tag: "nomic-embed-text" and "nomic-embed-text:latest" are
// one model.
func canonicalModel(name string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(name)), ":latest")
}

// checkDims learns the model's size on first sight, or compares it with what is expected.
func (o *Ollama) checkDims(got int) error {
	if got <= 0 {
		return &PermanentError{Reason: fmt.Sprintf("model %q returned an empty vector", o.model)}
	}
	if o.dims.CompareAndSwap(0, int64(got)) {
		return nil
	}
	if want := int(o.dims.Load()); want != got {
		return o.dimsError(got, want)
	}
	return nil
}

func (o *Ollama) dimsError(got, want int) error {
	return &PermanentError{Reason: fmt.Sprintf(
		"model %q returns %d-dimensional vectors but %d dimensions are expected; configure %d dimensions (and a matching vector column) or use a model with %d",
		o.model, got, want, got, want)}
}

// classify turns a client error into a typed one. ctx is the caller's context: its cancellation is
// returned as such (neither transient nor permanent), while our own per-call timeout is transient.
func (o *Ollama) classify(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("embed: ollama %s: %w", op, ctx.Err())
	}
	var se api.StatusError
	if errors.As(err, &se) {
		msg := strings.ToLower(se.ErrorMessage)
		switch {
		case se.StatusCode == http.StatusNotFound:
			return &PermanentError{Reason: fmt.Sprintf("model %q is not available on Ollama at %s; fix: run `ollama pull %s`", o.model, o.host, o.model), Err: se}
		case se.StatusCode == http.StatusRequestTimeout, se.StatusCode == http.StatusTooManyRequests,
			se.StatusCode == 499, se.StatusCode >= 500:
			return &TransientError{Reason: fmt.Sprintf("Ollama at %s failed (HTTP %d); retry later, or check the Ollama server log if it persists", o.host, se.StatusCode), Err: se}
		case strings.Contains(msg, "context length"):
			return &PermanentError{Reason: fmt.Sprintf("text is longer than model %q's context; split it or use a model with a longer context", o.model), someInput: true, Err: se}
		case strings.Contains(msg, "does not support"):
			return &PermanentError{Reason: fmt.Sprintf("model %q cannot embed; use an embedding model such as %s", o.model, DefaultModel), Err: se}
		default:
			return &PermanentError{Reason: fmt.Sprintf("Ollama at %s rejected the request (HTTP %d)", o.host, se.StatusCode), Err: se}
		}
	}
	var ae api.AuthorizationError
	if errors.As(err, &ae) {
		return &PermanentError{Reason: fmt.Sprintf("Ollama at %s refused access (HTTP %d); check OLLAMA_HOST points at an Ollama you may use", o.host, ae.StatusCode), Err: ae}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &TransientError{Reason: fmt.Sprintf("Ollama at %s did not answer in time", o.host), Err: err}
	}
	return &TransientError{Reason: fmt.Sprintf("cannot reach Ollama at %s; start it (`ollama serve`) or set OLLAMA_HOST", o.host), Err: err}
}
