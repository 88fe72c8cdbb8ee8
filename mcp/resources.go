package mcp

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/sqlexec/catalog"
)

const tableURIPrefix = "cairn://tables/"

// addResources serves each table's schema as a resource, as the reference PostgreSQL server did.
func (s *Server) addResources() {
	s.srv.AddResourceTemplate(&sdk.ResourceTemplate{
		Name:        "table-schema",
		Title:       "Table schema",
		Description: "A table's columns, primary key and indexes as JSON (what describe_table returns).",
		MIMEType:    "application/json",
		URITemplate: tableURIPrefix + "{schema}/{table}",
	}, s.readTableResource)
	s.srv.AddResource(&sdk.Resource{
		Name:        "tables",
		Title:       "Tables of the public schema",
		Description: "The tables of the public schema with row counts, and the URI of each one's schema resource.",
		MIMEType:    "application/json",
		URI:         "cairn://tables",
	}, s.readTablesResource)
}

func (s *Server) readTableResource(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	uri := req.Params.URI
	rest, ok := strings.CutPrefix(uri, tableURIPrefix)
	parts := strings.Split(rest, "/")
	if !ok || len(parts) != 2 {
		return nil, resourceNotFound(req, uri, "")
	}
	schema, err1 := url.PathUnescape(parts[0])
	table, err2 := url.PathUnescape(parts[1])
	if err1 != nil || err2 != nil || schema == "" || table == "" {
		return nil, resourceNotFound(req, uri, "")
	}
	t, err := catalog.DescribeTable(ctx, s.pool, schema, table)
	if err != nil {
		if _, ok := err.(*catalog.NotFoundError); ok {
			return nil, resourceNotFound(req, uri, err.Error())
		}
		return nil, fmt.Errorf("read %s: %w", uri, err)
	}
	return jsonResource(uri, t)
}

func (s *Server) readTablesResource(ctx context.Context, req *sdk.ReadResourceRequest) (*sdk.ReadResourceResult, error) {
	ts, err := catalog.ListTables(ctx, s.pool, "public", false)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", req.Params.URI, err)
	}
	type entry struct {
		catalog.TableSummary
		URI string `json:"uri"`
	}
	out := make([]entry, len(ts))
	for i, t := range ts {
		out[i] = entry{t, tableURIPrefix + url.PathEscape(t.Schema) + "/" + url.PathEscape(t.Name)}
	}
	return jsonResource(req.Params.URI, map[string]any{"tables": out})
}

func jsonResource(uri string, v any) (*sdk.ReadResourceResult, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", uri, err)
	}
	return &sdk.ReadResourceResult{Contents: []*sdk.ResourceContents{{URI: uri, MIMEType: "application/json", Text: string(b)}}}, nil
}
