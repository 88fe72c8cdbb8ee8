// Package interop tests cairn through MCP clients that nobody in this project wrote: the
// official TypeScript SDK client over stdio, Streamable HTTP and SSE, the MCP Inspector's CLI,
// and the official conformance suite. The clients are pinned in package-lock.json and installed
// by scripts/npm-cache.sh outside the repository; the tests themselves are node:test files
// in node/, which interop_test.go runs against the built binary and a fresh database, so that
// `go test ./...` (and so `make test` and CI) runs them.
package interop
