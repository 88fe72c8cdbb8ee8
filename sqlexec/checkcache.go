package sqlexec

import (
	"sync"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// checkCache remembers the parser's verdicts. Parsing costs tens of microseconds — as much as a
// point lookup itself — and agents send the same statements again and again: with other
// parameters (the same text), and with other literal values written into the text (the same
// shape, sqlguard.ShapeOf), for which scanning the text, a few microseconds, finds the verdict.
type checkCache struct {
	mu     sync.Mutex
	max    int
	exact  map[checkKey]checkEntry       // by text, errors included
	shapes map[checkKey]sqlguard.Verdict // by shape, statements that passed
}

type checkKey struct {
	write bool   // CheckExecute rather than CheckQuery
	key   string // the text, or the shape's key
}

type checkEntry struct {
	st  *sqlguard.Statement
	err error
}

// maxCachedText bounds the texts kept: long ones are rarely repeated, and the cache stays small.
const maxCachedText = 8 << 10

func newCheckCache(max int) *checkCache {
	return &checkCache{max: max, exact: make(map[checkKey]checkEntry, max), shapes: make(map[checkKey]sqlguard.Verdict, max)}
}

// check returns sqlguard's verdict on sql, from the cache when it has it. Statements are shared
// between callers and must not be modified.
func (c *checkCache) check(sql string, write bool) (*sqlguard.Statement, error) {
	k := checkKey{write, sql}
	c.mu.Lock()
	e, ok := c.exact[k]
	c.mu.Unlock()
	if ok {
		return e.st, e.err
	}
	short := len(sql) <= maxCachedText
	shape, shaped := sqlguard.Shape{}, false
	if short {
		shape, shaped = sqlguard.ShapeOf(sql)
	}
	if shaped {
		c.mu.Lock()
		v, ok := c.shapes[checkKey{write, shape.Key}]
		c.mu.Unlock()
		if ok {
			// Not kept by text: literal values vary, and each text would push out one that repeats.
			return v.For(shape), nil
		}
	}
	if write {
		e.st, e.err = sqlguard.CheckExecute(sql)
	} else {
		e.st, e.err = sqlguard.CheckQuery(sql)
	}
	if !short {
		return e.st, e.err
	}
	c.put(k, e)
	// Errors are kept by text only: their messages point at positions, which literals move.
	if shaped && e.err == nil {
		if v, ok := sqlguard.Keep(shape, e.st); ok {
			c.mu.Lock()
			evictOne(c.shapes, c.max)
			c.shapes[checkKey{write, shape.Key}] = v
			c.mu.Unlock()
		}
	}
	return e.st, e.err
}

func (c *checkCache) put(k checkKey, e checkEntry) {
	c.mu.Lock()
	evictOne(c.exact, c.max)
	c.exact[k] = e
	c.mu.Unlock()
}

// evictOne makes room in a full map by dropping an arbitrary entry: cheap, and good enough.
func evictOne[V any](m map[checkKey]V, max int) {
	if len(m) < max {
		return
	}
	for old := range m {
		delete(m, old)
		return
	}
}
