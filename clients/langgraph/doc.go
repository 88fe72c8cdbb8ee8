// Package langgraph holds the tests of the LangGraph checkpointer in this folder (a TypeScript
// package, CairnSaver): LangGraph's own validation suite and an end-to-end graph, each run with
// vitest against a cairn binary and database that the Go test starts. The package has no Go code.
package langgraph
