package testdb

import (
	"fmt"
	"os"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Examples gives a package's Example functions, which have no *testing.T, migrated databases of
// their own; its Main, called from TestMain, drops them once every test and Example has run.
// Without a PostgreSQL to test on, the test binary fails as New does in a test.
type Examples struct {
	tb mainTB
}

// Pool returns a pool on a new migrated database, which an Example uses as a program uses its own.
func (e *Examples) Pool() *pgxpool.Pool { return New(&e.tb).Pool }

// Main runs the tests and Examples, drops the Examples' databases and exits with the result.
func (e *Examples) Main(m *testing.M) {
	code := m.Run()
	e.tb.cleanup()
	os.Exit(code)
}

// mainTB is the part of testing.TB that New calls, outside a test: a failure ends the test
// binary after the cleanups, which otherwise run when Main calls cleanup. Examples run one at a
// time, so it needs no lock.
type mainTB struct {
	testing.TB // nil: a method New does not call panics, which fails the run too
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

// cleanup runs the cleanups, last registered first as testing does, and ends the test binary if
// one of them failed.
func (t *mainTB) cleanup() {
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	t.cleanups = nil
	if t.failed {
		os.Exit(1)
	}
}
