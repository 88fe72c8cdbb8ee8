package knowledge

// The SQL search.go runs: one read-only transaction, sent as one batch.
const (
	// beginReadOnlySQL opens the search's transaction.
	beginReadOnlySQL = `BEGIN READ ONLY`

	// efSearchSQL (candidates) sets, for the transaction, how many candidates an HNSW scan
	// keeps.
	efSearchSQL = `SET LOCAL hnsw.ef_search = %d`

	// iterativeScanSQL lets HNSW scans, for the transaction, go on until filters leave enough
	// rows.
	iterativeScanSQL = `SET LOCAL hnsw.iterative_scan = relaxed_order`

	// searchSQL runs both searches over both kinds and fuses them in one statement. Each semantic
	// branch is an HNSW scan (cosine) restricted to the current model's vectors; filters are applied
	// during the scan by pgvector's iterative scans, so a selective filter still fills the page.
	// Fusion is reciprocal rank fusion, Σ 1/(60 + rank) over the lists that found a row (Cormack et
	// al.'s constant, which needs no tuning). A hit's text is cut at 2,000 characters; knowledge_get
	// returns all of it.
	searchSQL = `
WITH q AS (
	SELECT CASE WHEN $12 THEN replace(plainto_tsquery('english', $3)::text, ' & ', ' | ')::tsquery END AS tsq
),
sem AS (
	SELECT kind, id, dist, row_number() OVER (ORDER BY dist, kind, id) AS rank FROM (
		(SELECT 'entity'::text AS kind, id, embedding <=> $1::vector AS dist FROM entities
		 WHERE $11 AND $4 AND embedding_model = $2 AND ($6::text IS NULL OR entity_type = $6)
		   AND ($8::timestamptz IS NULL OR created_at >= $8)
		 ORDER BY embedding <=> $1::vector LIMIT $9)
		UNION ALL
		(SELECT 'episode', id, embedding <=> $13::vector FROM episodes
		 WHERE $15 AND $5 AND embedding_model = $14 AND ($7::text IS NULL OR episode_type = $7)
		   AND ($8::timestamptz IS NULL OR occurred_at >= $8)
		 ORDER BY embedding <=> $13::vector LIMIT $9)
	) s
),
kw AS (
	SELECT kind, id, tr, row_number() OVER (ORDER BY tr DESC, kind, id) AS rank FROM (
		(SELECT 'entity'::text AS kind, id, ts_rank_cd(search_tsv, q.tsq) AS tr FROM entities, q
		 WHERE $12 AND $4 AND search_tsv @@ q.tsq AND ($6::text IS NULL OR entity_type = $6)
		   AND ($8::timestamptz IS NULL OR created_at >= $8)
		 ORDER BY tr DESC LIMIT $9)
		UNION ALL
		(SELECT 'episode', id, ts_rank_cd(search_tsv, q.tsq) FROM episodes, q
		 WHERE $12 AND $5 AND search_tsv @@ q.tsq AND ($7::text IS NULL OR episode_type = $7)
		   AND ($8::timestamptz IS NULL OR occurred_at >= $8)
		 ORDER BY 3 DESC LIMIT $9)
	) k
),
fused AS (
	SELECT coalesce(s.kind, k.kind) AS kind, coalesce(s.id, k.id) AS id, s.rank AS srank, k.rank AS krank, s.dist, k.tr,
		coalesce(1.0 / (60 + s.rank), 0) + coalesce(1.0 / (60 + k.rank), 0) AS rrf
	FROM sem s FULL JOIN kw k ON k.kind = s.kind AND k.id = s.id
	ORDER BY rrf DESC, s.dist NULLS LAST, kind, id
	LIMIT $10
)
SELECT f.kind, f.id, coalesce(e.name, p.name, ''), coalesce(e.entity_type, p.episode_type),
	left(coalesce(e.context, p.content, ''), 2000),
	f.srank::int, f.krank::int, f.dist, coalesce(f.tr, 0)::float8, f.rrf::float8,
	coalesce(e.embed_state, p.embed_state), coalesce(p.occurred_at, e.created_at)
FROM fused f
LEFT JOIN entities e ON f.kind = 'entity' AND e.id = f.id
LEFT JOIN episodes p ON f.kind = 'episode' AND p.id = f.id
ORDER BY f.rrf DESC, f.dist NULLS LAST, f.kind, f.id`

	// searchedModelsSQL reads the model label of each kind with vectors, in the search's
	// transaction.
	searchedModelsSQL = `SELECT kind, label FROM knowledge_models`

	// commitSQL ends the search's transaction.
	commitSQL = `COMMIT`
)
