package knowledge_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// TestMain drops the Examples' databases once every test and Example has run: an Example has
// no *testing.T whose end would drop them.
func TestMain(m *testing.M) {
	code := m.Run()
	examples.cleanup()
	os.Exit(code)
}

// examples stands in for the *testing.T that testdb.New wants, for the Examples.
var examples = &mainTB{}

// examplePool returns a pool on a new migrated database, which an Example uses as a program
// uses its own. Without a PostgreSQL to test on the test binary fails, as testdb's tests do.
func examplePool() *pgxpool.Pool { return testdb.New(examples).Pool }

// mainTB is the part of testing.TB that testdb calls, outside a test: a failure ends the test
// binary, after the cleanups, and the cleanups otherwise run when TestMain calls cleanup.
// Examples run one at a time, so it needs no lock.
type mainTB struct {
	testing.TB // nil: a method testdb does not call panics, which fails the run too
	cleanups   []func()
	failed     bool
}

func (*mainTB) Helper() {}

func (t *mainTB) Cleanup(f func()) { t.cleanups = append(t.cleanups, f) }

func (t *mainTB) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	t.failed = true
}

func (t *mainTB) Fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	t.cleanup()
	os.Exit(1)
}

// cleanup runs the cleanups, last registered first as testing does, and ends the test binary
// if one of them failed.
func (t *mainTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
	if t.failed {
		os.Exit(1)
	}
}
