package sqlexec

import (
	"sync"

	"github.com/cairn-mcp/cairn/internal/sqlguard"
)

// checkCache remembers the parser's verdict per SQL text. Parsing costs tens of microseconds —
// as much as the query itself — and agents send the same texts again and again with other
// parameters; the verdict depends on the text alone, so it can be reused.
type checkCache struct {
	mu      sync.Mutex
	max     int
	entries map[checkKey]checkEntry
}

type checkKey struct {
	write bool // CheckExecute rather than CheckQuery
	sql   string
}

type checkEntry struct {
	st  *sqlguard.Statement
	err error
}

func newCheckCache(max int) *checkCache {
	return &checkCache{max: max, entries: make(map[checkKey]checkEntry, max)}
}

// check returns sqlguard's verdict on sql, from the cache when it has it. Statements are shared
// between callers and must not be modified.
func (c *checkCache) check(sql string, write bool) (*sqlguard.Statement, error) {
	k := checkKey{write, sql}
	c.mu.Lock()
	e, ok := c.entries[k]
	c.mu.Unlock()
	if ok {
		return e.st, e.err
	}
	if write {
		e.st, e.err = sqlguard.CheckExecute(sql)
	} else {
		e.st, e.err = sqlguard.CheckQuery(sql)
	}
	if len(sql) > 8<<10 {
		return e.st, e.err // long texts are rarely repeated; keep the cache small
	}
	c.mu.Lock()
	if len(c.entries) >= c.max {
		for old := range c.entries { // evict an arbitrary entry: cheap, and good enough
			delete(c.entries, old)
			break
		}
	}
	c.entries[k] = e
	c.mu.Unlock()
	return e.st, e.err
}
