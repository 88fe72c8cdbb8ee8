package agents_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairn-mcp/cairn/internal/testdb"
)

// examples gives the Examples their databases and drops them after the run.
var examples testdb.Examples

func TestMain(m *testing.M) { examples.Main(m) }

// examplePool returns a pool on a new migrated database of the Example's own.
func examplePool() *pgxpool.Pool { return examples.Pool() }
