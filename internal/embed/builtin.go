package embed

import (
	"context"
	"fmt"
	"strings"
	"unicode"
)

// DefaultBuiltinDimensions is the built-in embedder's vector length when none is configured; it
// matches all-minilm and the seed's 384-dimension columns.
const DefaultBuiltinDimensions = 384

// BuiltinModel names the hashing scheme in Info.Model. Changing the features or the hash must
// change this name, so that vectors from the old scheme are detected as a different model.
const BuiltinModel = "hashing-v1"

// Feature weights: whole words carry meaning, trigrams make near-spellings (plurals, quoting,
// case) still match. Trigrams are down-weighted because a long word yields many of them.
const (
	wordWeight    = 1.0
	partWeight    = 0.7
	trigramWeight = 0.35
)

// Builtin is a deterministic, network-free embedder using signed feature hashing of lower-cased
// words, camelCase parts and character trigrams. It captures spelling overlap, not meaning, which is
// enough for tests and for finding repeated error messages.
type Builtin struct {
	dims int
}

// NewBuiltin returns a Builtin producing vectors of dims dimensions (0 means
// DefaultBuiltinDimensions).
func NewBuiltin(dims int) (*Builtin, error) {
	if dims == 0 {
		dims = DefaultBuiltinDimensions
	}
	if dims < 0 {
		return nil, fmt.Errorf("embed: builtin dimensions must be positive, got %d", dims)
	}
	return &Builtin{dims: dims}, nil
}

// Info returns provider "builtin", model BuiltinModel and the configured dimensions.
func (b *Builtin) Info() Info {
	return Info{Provider: ProviderBuiltin, Model: BuiltinModel, Dimensions: b.dims}
}

// Embed hashes each text into a unit vector. Kind is ignored: the hashing space is symmetric, so
// queries and documents are comparable without prefixes. Blank texts give a *PermanentError
// naming their indexes rather than a zero vector, which cosine distance cannot handle.
func (b *Builtin) Embed(ctx context.Context, kind Kind, texts []string) ([][]float32, error) {
	if bad := emptyInputs(texts); len(bad) > 0 {
		return nil, errEmpty(bad)
	}
	out := make([][]float32, len(texts))
	var h hasher
	for i, t := range texts {
		if i%256 == 0 && ctx.Err() != nil {
			return nil, fmt.Errorf("embed: builtin: %w", ctx.Err())
		}
		v := make([]float32, b.dims)
		h.vec = v
		h.text(t)
		if !normalize(v) {
			// Unreachable for non-blank text (every text hashes at least one feature), but a zero
			// vector must never leave this package.
			return nil, &PermanentError{Reason: "builtin embedder produced a zero vector", Inputs: []int{i}}
		}
		out[i] = v
	}
	return out, nil
}

// hasher accumulates features of one text into vec; its buffers are reused across texts.
type hasher struct {
	vec   []float32
	word  []rune
	lower []rune
}

func (h *hasher) text(t string) {
	n := 0
	h.word = h.word[:0]
	for _, r := range t {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			h.word = append(h.word, r)
			continue
		}
		if len(h.word) > 0 {
			h.addWord()
			n++
			h.word = h.word[:0]
		}
	}
	if len(h.word) > 0 {
		h.addWord()
		n++
	}
	if n == 0 {
		// Only punctuation or symbols ("!!!", "→"): hash the whole text so it still has a
		// direction and equal texts still match.
		h.add(fnvString('s', strings.TrimSpace(t)), wordWeight)
	}
}

func (h *hasher) addWord() {
	h.lower = h.lower[:0]
	for _, r := range h.word {
		h.lower = append(h.lower, unicode.ToLower(r))
	}
	h.add(fnvRunes('w', h.lower), wordWeight)

	// camelCase parts ("ModuleNotFoundError" → module, not, found, error) so identifiers match
	// prose that spells them out.
	start := 0
	for i := 1; i <= len(h.word); i++ {
		if i == len(h.word) || (unicode.IsUpper(h.word[i]) && unicode.IsLower(h.word[i-1])) {
			if start > 0 || i < len(h.word) {
				h.add(fnvRunes('w', h.lower[start:i]), partWeight)
			}
			start = i
		}
	}

	// Trigrams of "<word>" with boundary markers, so prefixes and suffixes count.
	const bound = '\x02'
	var win [3]rune
	m := len(h.lower) + 2
	at := func(i int) rune {
		switch i {
		case 0, m - 1:
			return bound
		default:
			return h.lower[i-1]
		}
	}
	if m < 3 {
		return
	}
	for i := 0; i+3 <= m; i++ {
		win[0], win[1], win[2] = at(i), at(i+1), at(i+2)
		h.add(fnvRunes('g', win[:]), trigramWeight)
	}
}

// add puts a signed feature into the vector. A finalizer spreads FNV's weak low bits before the
// bucket (low bits) and sign (top bit) are taken, so the two are independent.
func (h *hasher) add(x uint64, w float32) {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	i := x % uint64(len(h.vec))
	if x>>63 == 1 {
		w = -w
	}
	h.vec[i] += w
}

const (
	fnvOffset = 14695981039346656037
	fnvPrime  = 1099511628211
)

// fnvRunes is FNV-1a over a namespace byte and each rune as 4 little-endian bytes: defined on
// code points, not on memory layout, so it is the same on every machine and run.
func fnvRunes(ns byte, rs []rune) uint64 {
	x := uint64(fnvOffset)
	x = (x ^ uint64(ns)) * fnvPrime
	for _, r := range rs {
		u := uint32(r)
		x = (x ^ uint64(u&0xff)) * fnvPrime
		x = (x ^ uint64((u>>8)&0xff)) * fnvPrime
		x = (x ^ uint64((u>>16)&0xff)) * fnvPrime
		x = (x ^ uint64(u>>24)) * fnvPrime
	}
	return x
}

func fnvString(ns byte, s string) uint64 {
	x := uint64(fnvOffset)
	x = (x ^ uint64(ns)) * fnvPrime
	for i := 0; i < len(s); i++ {
		x = (x ^ uint64(s[i])) * fnvPrime
	}
	return x
}
