package mcp

import "github.com/cairn-mcp/cairn/internal/eventstore"

// The SQL workflow_resources.go runs.
const (
	// listenEventsSQL subscribes the watch's connection to the notifications appends send.
	listenEventsSQL = `LISTEN ` + eventstore.Channel
)
