// Command pgxserver is the do-nothing go-sdk server of the peers benchmark (make bench-peers):
// one tool, query, that runs the caller's SQL through a pgx pool and returns the rows as JSON
// text, the way a minimal go-sdk + pgx server would. What cairn spends above it is cairn's own
// work (parse check, read-only transaction, caps, encoding, structured result).
//
//	pgxserver -database-url URL                 MCP over stdio
//	pgxserver -database-url URL -addr HOST:PORT  Streamable HTTP at /mcp (stateless, as cairn serves it)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	sdk "github.com/modelcontextprotocol/go-sdk/mcp"
)

func main() {
	url := flag.String("database-url", "", "PostgreSQL connection string")
	addr := flag.String("addr", "", "serve Streamable HTTP on this address instead of stdio")
	flag.Parse()
	if err := run(*url, *addr); err != nil {
		fmt.Fprintln(os.Stderr, "pgxserver:", err)
		os.Exit(1)
	}
}

type queryIn struct {
	SQL string `json:"sql" jsonschema:"the SQL statement to run"`
}

func run(url, addr string) error {
	ctx := context.Background()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return err
	}
	// Clients send literal SQL that differs from call to call: pgx's default statement cache
	// would prepare (one more round trip) and keep every one of them.
	cfg.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeExec
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()

	s := sdk.NewServer(&sdk.Implementation{Name: "pgxserver", Version: "1"}, nil)
	sdk.AddTool(s, &sdk.Tool{Name: "query", Description: "Run a SQL query and return its rows as JSON."},
		func(ctx context.Context, _ *sdk.CallToolRequest, in queryIn) (*sdk.CallToolResult, any, error) {
			rows, err := pool.Query(ctx, in.SQL)
			if err != nil {
				return nil, nil, err
			}
			maps, err := pgx.CollectRows(rows, pgx.RowToMap)
			if err != nil {
				return nil, nil, err
			}
			b, err := json.Marshal(maps)
			if err != nil {
				return nil, nil, err
			}
			return &sdk.CallToolResult{Content: []sdk.Content{&sdk.TextContent{Text: string(b)}}}, nil, nil
		})
	if addr == "" {
		return s.Run(ctx, &sdk.StdioTransport{})
	}
	h := sdk.NewStreamableHTTPHandler(func(*http.Request) *sdk.Server { return s }, &sdk.StreamableHTTPOptions{Stateless: true})
	mux := http.NewServeMux()
	mux.Handle("/mcp", h)
	return http.ListenAndServe(addr, mux)
}
