package knowledge

// The SQL status.go runs.
const (
	// statusSQL counts each kind's rows by embed state, the vectors of a model other than the
	// kind's recorded one, and when the oldest pending row was written.
	statusSQL = `
SELECT 'entity', count(*), count(*) FILTER (WHERE embed_state = 'embedded'), count(*) FILTER (WHERE embed_state = 'pending'),
	count(*) FILTER (WHERE embed_state = 'failed'), count(*) FILTER (WHERE embed_state = 'external'),
	count(*) FILTER (WHERE embedding IS NOT NULL AND embed_state <> 'external' AND embedding_model IS DISTINCT FROM (SELECT label FROM knowledge_models WHERE kind = 'entity')),
	min(updated_at) FILTER (WHERE embed_state = 'pending')
FROM entities
UNION ALL
SELECT 'episode', count(*), count(*) FILTER (WHERE embed_state = 'embedded'), count(*) FILTER (WHERE embed_state = 'pending'),
	count(*) FILTER (WHERE embed_state = 'failed'), count(*) FILTER (WHERE embed_state = 'external'),
	count(*) FILTER (WHERE embedding IS NOT NULL AND embed_state <> 'external' AND embedding_model IS DISTINCT FROM (SELECT label FROM knowledge_models WHERE kind = 'episode')),
	min(updated_at) FILTER (WHERE embed_state = 'pending')
FROM episodes`

	// relationCountsSQL counts the current relations and the ended ones.
	relationCountsSQL = `SELECT count(*) FILTER (WHERE invalid_at IS NULL), count(*) FILTER (WHERE invalid_at IS NOT NULL) FROM relations`

	// modelCountsSQL counts, per kind, the rows with vectors of each model, most first.
	modelCountsSQL = `SELECT kind, coalesce(model, ''), count(*) FROM (
		SELECT 'entity' AS kind, embedding_model AS model FROM entities WHERE embedding IS NOT NULL
		UNION ALL SELECT 'episode', embedding_model FROM episodes WHERE embedding IS NOT NULL) m
	GROUP BY 1, 2 ORDER BY 1, 3 DESC`

	// failureReasonsSQL counts the failed rows of both kinds by reason: the ten commonest.
	failureReasonsSQL = `SELECT kind, coalesce(reason, ''), count(*) FROM (
		SELECT 'entity' AS kind, embed_error AS reason FROM entities WHERE embed_state = 'failed'
		UNION ALL SELECT 'episode', embed_error FROM episodes WHERE embed_state = 'failed') f
	GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 10`

	// backlogSQL counts each kind's pending and failed rows from the partial indexes on them.
	backlogSQL = `SELECT 'entity', (SELECT count(*) FROM entities WHERE embed_state = 'pending'), (SELECT count(*) FROM entities WHERE embed_state = 'failed')
	UNION ALL SELECT 'episode', (SELECT count(*) FROM episodes WHERE embed_state = 'pending'), (SELECT count(*) FROM episodes WHERE embed_state = 'failed')`
)
