// Where the tests find cairn: set by langgraph_test.go, or by hand to a running `cairn serve
// --transport http`.
export function cairnURL(): string {
  const url = process.env.CAIRN_URL;
  if (!url) throw new Error("CAIRN_URL is not set: run the tests through `go test ./clients/langgraph/` (or set it to a cairn's /mcp URL)");
  return url;
}

export function cairnToken(): string | undefined {
  return process.env.CAIRN_TOKEN || undefined;
}
