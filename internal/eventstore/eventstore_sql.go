package eventstore

// The SQL eventstore.go runs.
const (
	// appendEventsSQL appends events to stream $1 through cairn_append_events, at expected
	// version $2 (-1: any, 0: a new stream), with their types, data and metadata ($3, $4, $5) and
	// idempotency key $6 (NULL: none); it returns the versions and positions they got and whether
	// the key had appended them before.
	appendEventsSQL = `SELECT first_version, last_version, positions, duplicate
		FROM cairn_append_events($1, $2, $3::text[], $4::jsonb[], $5::jsonb[], $6)`

	// streamVersionSQL reads a stream's current version (0: it does not exist).
	streamVersionSQL = `SELECT coalesce((SELECT version FROM event_streams WHERE stream_id = $1), 0)`

	// eventColumns is the select list collect reads: an event's row.
	eventColumns = `position, stream_id, version, type, data, metadata, tx_id::text::bigint, created_at`

	// readStreamSQL reads up to $3 events of stream $1 with versions after $2, oldest first.
	readStreamSQL = `SELECT ` + eventColumns + ` FROM events
		WHERE stream_id = $1 AND version > $2 ORDER BY version LIMIT $3`
)
