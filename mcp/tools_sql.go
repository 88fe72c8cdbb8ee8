package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/callerr"
	"github.com/cairn-mcp/cairn/sqlexec"
)

// QueryArgs are the arguments of query and execute.
type QueryArgs struct {
	SQL    string `json:"sql" jsonschema:"one statement; values go in params as $1, $2, …"`
	Params []any  `json:"params,omitempty" jsonschema:"values for $1, $2, …"`
}

// TxStatementArgs is one statement of a transaction call.
type TxStatementArgs struct {
	SQL    string `json:"sql"`
	Params []any  `json:"params,omitempty" jsonschema:"values for $1, …; \"{x}\" is an earlier value"`
	As     string `json:"as,omitempty" jsonschema:"names this statement's first value"`
}

// TransactionArgs are the arguments of transaction.
type TransactionArgs struct {
	Statements []TxStatementArgs `json:"statements"`
}

// QueryResult is the result of query (and the rows part of execute).
type QueryResult struct {
	Rows      []map[string]any `json:"rows"`
	RowCount  int              `json:"row_count"`
	Columns   []string         `json:"columns"`
	Truncated bool             `json:"truncated"`
	MaxRows   int              `json:"max_rows,omitempty"`
	// MaxResultBytes is set when the byte cap cut the result.
	MaxResultBytes int    `json:"max_result_bytes,omitempty"`
	Notice         string `json:"notice,omitempty"`
}

// ExecuteResult is the result of execute and of each transaction statement.
type ExecuteResult struct {
	Command        string           `json:"command"`
	RowsAffected   int64            `json:"rows_affected"`
	Rows           []map[string]any `json:"rows,omitempty"`
	RowCount       int              `json:"row_count,omitempty"`
	Columns        []string         `json:"columns,omitempty"`
	Truncated      bool             `json:"truncated,omitempty"`
	MaxRows        int              `json:"max_rows,omitempty"`
	MaxResultBytes int              `json:"max_result_bytes,omitempty"`
	Notice         string           `json:"notice,omitempty"`
}

// TransactionResult is the result of transaction.
type TransactionResult struct {
	Results   []ExecuteResult `json:"results"`
	Committed bool            `json:"committed"`
}

// VectorSearchArgs are the arguments of vector_search (the seed API's names).
type VectorSearchArgs struct {
	Table           string    `json:"table" jsonschema:"or schema.table"`
	EmbeddingColumn string    `json:"embedding_column"`
	QueryEmbedding  []float64 `json:"query_embedding"`
	Limit           int       `json:"limit,omitempty" jsonschema:"default 10, at most 1000"`
	WhereClause     string    `json:"where_clause,omitempty" jsonschema:"a SQL condition on the table's columns"`
	Schema          string    `json:"schema,omitempty"`
}

// InsertVectorArgs are the arguments of insert_vector (the seed API's names).
type InsertVectorArgs struct {
	Table           string         `json:"table" jsonschema:"or schema.table"`
	Columns         map[string]any `json:"columns,omitempty" jsonschema:"the other columns' values by name"`
	EmbeddingColumn string         `json:"embedding_column"`
	Embedding       []float64      `json:"embedding"`
	Schema          string         `json:"schema,omitempty"`
}

// InsertVectorResult is the result of insert_vector.
type InsertVectorResult struct {
	Table        string         `json:"table"`
	Key          map[string]any `json:"key"`
	RowsAffected int64          `json:"rows_affected"`
}

// newBufPool returns the pool of result buffers a Server's raw tools encode into.
func newBufPool() *sync.Pool {
	return &sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}
}

// rawHandler serves a tool whose result cairn encodes itself: the rows go straight from the
// wire into one JSON buffer, which is handed to the SDK as both the structured result and its
// text form, instead of building maps and encoding them again.
func rawHandler[In any](s *Server, tool string, run func(ctx context.Context, dst []byte, in *In) ([]byte, error)) sdk.ToolHandler {
	return func(ctx context.Context, req *sdk.CallToolRequest) (res *sdk.CallToolResult, err error) {
		defer func() {
			if p := recover(); p != nil {
				res, err = toolError(s.recovered(tool, p)), nil
			}
		}()
		var in In
		if err := decodeArgs(req.Params.Arguments, &in); err != nil {
			return toolError(&callerr.Input{Msg: tool + ": " + err.Error()}), nil
		}
		if err := s.permitArgs(ctx, tool, &in); err != nil {
			s.logCallError(ctx, tool, err)
			return toolError(outageFor(tool, err)), nil
		}
		bp := s.bufs.Get().(*[]byte)
		out, err := run(ctx, (*bp)[:0], &in)
		if err != nil {
			*bp = out[:0]
			s.bufs.Put(bp)
			s.logCallError(ctx, tool, err)
			return toolError(outageFor(tool, err)), nil
		}
		// The SDK encodes the result after this returns, so it gets its own copy.
		text := string(out)
		if cap(out) <= 4<<20 {
			*bp = out[:0]
			s.bufs.Put(bp)
		}
		return &sdk.CallToolResult{
			Content:           []sdk.Content{&sdk.TextContent{Text: text}},
			StructuredContent: json.RawMessage(text),
		}, nil
	}
}

// decodeArgs decodes tool arguments strictly: unknown names are refused (a misspelt optional
// argument would otherwise be silently ignored) and numbers keep their exact digits.
func decodeArgs(raw json.RawMessage, v any) error {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		raw = json.RawMessage("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		switch {
		case errors.As(err, &ute):
			return fmt.Errorf("argument %q: got JSON %s, want %s", ute.Field, ute.Value, jsonKind(ute.Type.String()))
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return fmt.Errorf("unknown argument %s; see the tool's input schema for the arguments it takes", strings.TrimPrefix(err.Error(), "json: unknown field "))
		default:
			return fmt.Errorf("arguments are not valid JSON: %w", err)
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("arguments: trailing data after the JSON object")
	}
	return nil
}

func jsonKind(goType string) string {
	switch {
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case strings.HasPrefix(goType, "map["), strings.HasPrefix(goType, "mcp."), strings.HasPrefix(goType, "struct"):
		return "an object"
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "int"), strings.HasPrefix(goType, "float"):
		return "a number"
	case goType == "bool":
		return "true or false"
	}
	return goType
}

func requireSQL(sql, example string) error {
	if strings.TrimSpace(sql) == "" {
		return &callerr.Input{Msg: "sql is required: one SQL statement, e.g. " + example}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func (s *Server) addSQLTools() {
	ro := s.cfg.ReadOnly
	roNote := ""
	if ro {
		roNote = " This server runs read-only (--read-only): the call is refused."
	}
	s.addRawTool(&sdk.Tool{
		Name:  "query",
		Title: "Run a read-only SQL query",
		Description: `Run one read-only statement (SELECT, EXPLAIN, SHOW); rows come as JSON objects, cut at the row cap with "truncated": true.
Example: {"sql": "SELECT * FROM agents WHERE template = $1", "params": ["researcher"]}`,
		InputSchema:  mustSchema[QueryArgs](),
		OutputSchema: resultSchema[QueryResult](),
		Annotations:  readAnnotations(),
	}, rawHandler(s, "query", func(ctx context.Context, dst []byte, in *QueryArgs) ([]byte, error) {
		if err := requireSQL(in.SQL, `"SELECT * FROM workflows WHERE status = $1"`); err != nil {
			return dst, err
		}
		return s.run.Query(ctx, dst, in.SQL, in.Params)
	}))

	s.addRawTool(&sdk.Tool{
		Name:  "execute",
		Title: "Run a SQL write",
		Description: `Run one write or DDL statement in its own transaction; RETURNING rows come back.
Example: {"sql": "UPDATE agents SET status = $1 WHERE agent_id = $2", "params": ["done", "agent-1"]}` + roNote,
		InputSchema:  mustSchema[QueryArgs](),
		OutputSchema: resultSchema[ExecuteResult](),
		Annotations:  &sdk.ToolAnnotations{DestructiveHint: ptr(true)},
	}, rawHandler(s, "execute", func(ctx context.Context, dst []byte, in *QueryArgs) ([]byte, error) {
		if err := requireSQL(in.SQL, `"INSERT INTO workflows (name, status) VALUES ($1, $2)"`); err != nil {
			return dst, err
		}
		return s.run.Execute(ctx, dst, in.SQL, in.Params)
	}))

	s.addRawTool(&sdk.Tool{
		Name:  "transaction",
		Title: "Run a SQL transaction",
		Description: `Run statements in one transaction, all or nothing. "as": "x" names a statement's first value; later params pass it as "{x}".
Example: {"statements": [{"sql": "INSERT INTO a (n) VALUES ($1) RETURNING id", "params": ["x"], "as": "id"}, {"sql": "INSERT INTO b (a_id) VALUES ($1)", "params": ["{id}"]}]}` + roNote,
		InputSchema:  mustSchema[TransactionArgs](),
		OutputSchema: resultSchema[TransactionResult](),
		Annotations:  &sdk.ToolAnnotations{DestructiveHint: ptr(true)},
	}, rawHandler(s, "transaction", func(ctx context.Context, dst []byte, in *TransactionArgs) ([]byte, error) {
		stmts := make([]sqlexec.TxStatement, len(in.Statements))
		for i, st := range in.Statements {
			if err := requireSQL(st.SQL, `"INSERT INTO workflows (name) VALUES ($1) RETURNING id"`); err != nil {
				return dst, fmt.Errorf("statements[%d]: %w", i, err)
			}
			stmts[i] = sqlexec.TxStatement{SQL: st.SQL, Params: st.Params, As: st.As}
		}
		return s.run.Transaction(ctx, dst, stmts)
	}))
}

func (s *Server) addVectorTools() {
	roNote := ""
	if s.cfg.ReadOnly {
		roNote = " This server runs read-only (--read-only): the call is refused."
	}
	s.addRawTool(&sdk.Tool{
		Name:  "vector_search",
		Title: "Vector search",
		Description: `Rows nearest to query_embedding by cosine distance (pgvector), nearest first, with "distance".
Example: {"table": "episodes", "embedding_column": "embedding", "query_embedding": [0.1, 0.2], "where_clause": "episode_type = 'error'"}`,
		InputSchema:  mustSchema[VectorSearchArgs](),
		OutputSchema: resultSchema[QueryResult](),
		Annotations:  readAnnotations(),
	}, rawHandler(s, "vector_search", func(ctx context.Context, dst []byte, in *VectorSearchArgs) ([]byte, error) {
		schema, table := splitQualified(in.Schema, in.Table)
		return s.run.VectorSearch(ctx, dst, sqlexec.VectorSearch{
			Schema: schema, Table: table, EmbeddingColumn: in.EmbeddingColumn,
			QueryEmbedding: in.QueryEmbedding, Limit: in.Limit, WhereClause: in.WhereClause,
		})
	}))
	s.addRawTool(&sdk.Tool{
		Name:  "insert_vector",
		Title: "Insert a row with an embedding",
		Description: `Insert one row with its embedding.
Example: {"table": "entities", "columns": {"name": "OOMKilled"}, "embedding_column": "embedding", "embedding": [0.1, 0.2]}` + roNote,
		InputSchema:  mustSchema[InsertVectorArgs](),
		OutputSchema: resultSchema[InsertVectorResult](),
		Annotations:  writeAnnotations(),
	}, rawHandler(s, "insert_vector", func(ctx context.Context, dst []byte, in *InsertVectorArgs) ([]byte, error) {
		if len(in.Columns) == 0 && in.Columns == nil {
			in.Columns = map[string]any{}
		}
		schema, table := splitQualified(in.Schema, in.Table)
		return s.run.InsertVector(ctx, dst, sqlexec.InsertVector{
			Schema: schema, Table: table, Columns: in.Columns,
			EmbeddingColumn: in.EmbeddingColumn, Embedding: in.Embedding,
		})
	}))
}

// splitQualified accepts "schema.table" in the table argument when no schema is given, as
// callers often write it that way. A table whose own name contains a dot must use schema.
func splitQualified(schema, table string) (string, string) {
	if schema == "" {
		if sch, t, ok := strings.Cut(table, "."); ok && sch != "" && t != "" && !strings.Contains(t, ".") {
			return sch, t
		}
	}
	return schema, table
}
