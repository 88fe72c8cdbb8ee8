package status

import (
	"fmt"
	"time"

	"github.com/cairn-mcp/cairn/jobs"
	"github.com/cairn-mcp/cairn/knowledge"
)

// Exit codes of `cairn status`, a contract for scripts and health checks (2 is the CLI's own,
// for bad flags).
const (
	ExitHealthy     = 0
	ExitUnreachable = 1 // the database cannot be reached, or a query of the check failed
	ExitDegraded    = 3 // reachable, but something needs the operator
)

// Report is what `cairn status --json` prints; its keys are documented in the command's help and
// are a contract for scripts, so the fields keep their order and tags.
type Report struct {
	Healthy      bool         `json:"healthy"`
	Problems     []Problem    `json:"problems"`
	Warnings     []string     `json:"warnings"`
	CheckedAt    time.Time    `json:"checked_at"`
	CairnVersion string       `json:"cairn_version"`
	Database     Database     `json:"database"`
	Embedder     *Embedder    `json:"embedder"`
	Queue        *Queue       `json:"queue"`
	Counts       *Counts      `json:"counts"`
	Interrupted  *Interrupted `json:"interrupted"`
}

// Problem is something that makes the status non-zero; Code is stable, Message is for people.
type Problem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	fatal   bool   // exit ExitUnreachable rather than ExitDegraded
}

// Database is where the database is, whether it answers, and how its schema compares with this
// cairn's.
type Database struct {
	Reachable         bool      `json:"reachable"`
	Target            string    `json:"target,omitempty"`
	Error             string    `json:"error,omitempty"`
	Embedded          *Embedded `json:"embedded,omitempty"`
	PostgresVersion   string    `json:"postgres_version,omitempty"`
	Pgvector          string    `json:"pgvector"`
	PgvectorAvailable string    `json:"pgvector_available"`
	SchemaVersion     int       `json:"schema_version"`
	SchemaLatest      int       `json:"schema_latest"`
	SchemaPending     []int     `json:"schema_pending"`
	RiverPending      []int     `json:"river_pending"`
	Role              string    `json:"role,omitempty"`
	Superuser         bool      `json:"superuser"`
}

// Embedded is the embedded cluster, reported when no database is configured.
type Embedded struct {
	DataDir     string `json:"data_dir"`
	Initialized bool   `json:"initialized"`
	Running     bool   `json:"running"`
}

// Embedder is the embedder the settings choose and the models the graph's vectors were made with.
type Embedder struct {
	Requested        string                 `json:"requested"`
	Provider         string                 `json:"provider"`
	Model            string                 `json:"model"`
	Dimensions       int                    `json:"dimensions"`
	Label            string                 `json:"label"`
	Why              string                 `json:"why"`
	Ollama           []Ollama               `json:"ollama"`
	ColumnDimensions int                    `json:"column_dimensions"`
	Recorded         map[string]string      `json:"recorded"`
	GraphModel       string                 `json:"graph_model"`
	GraphModels      []knowledge.ModelCount `json:"graph_models"`
	OtherModelRows   int64                  `json:"other_model_rows"`
}

// Ollama is what one Ollama model answered when probed.
type Ollama struct {
	Host  string `json:"host"`
	Model string `json:"model"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// Queue is River's job queue: jobs per state, the oldest waiting, and the kinds that fail.
type Queue struct {
	Available              int64               `json:"available"`
	Scheduled              int64               `json:"scheduled"`
	Pending                int64               `json:"pending"`
	Retryable              int64               `json:"retryable"`
	Running                int64               `json:"running"`
	Completed              int64               `json:"completed"`
	Cancelled              int64               `json:"cancelled"`
	Discarded              int64               `json:"discarded"`
	OldestAvailableSeconds float64             `json:"oldest_available_seconds"`
	Failing                []jobs.KindFailures `json:"failing"`
}

// Counts are the rows of each domain; a nil count means its table is missing (a schema behind).
type Counts struct {
	Workflows         map[string]int64 `json:"workflows"`
	WorkflowsTotal    *int64           `json:"workflows_total"`
	Checkpoints       *int64           `json:"checkpoints"`
	Agents            *int64           `json:"agents"`
	Executions        *int64           `json:"executions"`
	Entities          *int64           `json:"entities"`
	Episodes          *int64           `json:"episodes"`
	Relations         *int64           `json:"relations"`
	EmbeddingsPending *int64           `json:"embeddings_pending"`
	EmbeddingsFailed  *int64           `json:"embeddings_failed"`
}

// Interrupted is how many workflows wait on a human, and the most recently updated of them.
type Interrupted struct {
	Count  int64                 `json:"count"`
	Recent []InterruptedWorkflow `json:"recent"`
}

// InterruptedWorkflow is one workflow waiting on a human; InterruptedAt is nil when unknown.
type InterruptedWorkflow struct {
	ID            string     `json:"id"`
	Name          string     `json:"name"`
	Reason        string     `json:"reason,omitempty"`
	InterruptedAt *time.Time `json:"interrupted_at"`
}

func (r *Report) problem(code string, fatal bool, format string, args ...any) {
	r.Problems = append(r.Problems, Problem{Code: code, Message: fmt.Sprintf(format, args...), fatal: fatal})
}

func (r *Report) warn(format string, args ...any) {
	r.Warnings = append(r.Warnings, fmt.Sprintf(format, args...))
}

// ExitCode is the status's exit code: the worst problem decides.
func (r *Report) ExitCode() int {
	code := ExitHealthy
	for _, p := range r.Problems {
		if p.fatal {
			return ExitUnreachable
		}
		code = ExitDegraded
	}
	return code
}
