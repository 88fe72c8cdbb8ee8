package jobs

// The SQL queue.go runs.
const (
	// jobTablesExistSQL reads whether River's job table exists.
	jobTablesExistSQL = `SELECT to_regclass('river_job') IS NOT NULL`

	// jobsByStateSQL counts River's jobs by state.
	jobsByStateSQL = `SELECT state::text, count(*) FROM river_job GROUP BY state`

	// oldestAvailableSQL reads how many milliseconds the longest-waiting available job has been
	// due (0: none waits).
	oldestAvailableSQL = `SELECT coalesce(extract(epoch FROM now() - min(scheduled_at)) * 1000, 0)::float8
	FROM river_job WHERE state = 'available'`

	// failingSQL counts the retryable and discarded jobs by kind and state, most first, with the
	// error of the most recently attempted job of each. The errors column is jsonb[] (one entry
	// per failed attempt), so the last attempt's message is its last element; DISTINCT ON picks
	// the most recently attempted job of each kind and state.
	failingSQL = `
SELECT f.kind, f.state::text, f.jobs, coalesce(l.last_error, '')
FROM (SELECT kind, state, count(*) AS jobs FROM river_job
	WHERE state IN ('retryable', 'discarded') GROUP BY kind, state) f
LEFT JOIN (SELECT DISTINCT ON (kind, state) kind, state, errors[cardinality(errors)] ->> 'error' AS last_error
	FROM river_job WHERE state IN ('retryable', 'discarded') AND cardinality(errors) > 0
	ORDER BY kind, state, attempted_at DESC NULLS LAST, id DESC) l USING (kind, state)
ORDER BY f.jobs DESC, f.kind, f.state`
)
