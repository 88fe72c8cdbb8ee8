package knowledge

// The SQL reindex.go runs. Statements on a kind's table are templates: the table (entities or
// episodes), its columns and indexes are identifiers, which cannot be query parameters, so they
// are filled in with fmt.Sprintf (%s) from names this package makes, never from input.
const (
	// reindexTryLockSQL takes the session-level advisory lock one reindex holds, without waiting.
	reindexTryLockSQL = `SELECT pg_try_advisory_lock($1)`

	// reindexUnlockSQL releases the lock reindexTryLockSQL took.
	reindexUnlockSQL = `SELECT pg_advisory_unlock($1)`

	// reindexPendingSQL reads the model and start time of a kind's unfinished reindex.
	reindexPendingSQL = `SELECT label, started_at FROM knowledge_reindex WHERE kind = $1`

	// reindexRecordSQL records that a kind's reindex to a model has begun (kept if it had).
	reindexRecordSQL = `INSERT INTO knowledge_reindex (kind, provider, model, dimensions) VALUES ($1, $2, $3, $4)
	ON CONFLICT (kind) DO NOTHING`

	// reindexForgetSQL deletes a kind's reindex record, once it switched or was aborted.
	reindexForgetSQL = `DELETE FROM knowledge_reindex WHERE kind = $1`

	// ddlLockTimeoutSQL bounds, for the transaction, the wait for the lock that adding or
	// dropping the shadow columns takes.
	ddlLockTimeoutSQL = `SET LOCAL lock_timeout = '10s'`

	// switchLockTimeoutSQL bounds, for the transaction, the wait for the switch's table lock.
	switchLockTimeoutSQL = `SET LOCAL lock_timeout = '2s'`

	// addShadowColumnsSQL (table, dimensions) adds the columns the new model's vectors go into.
	addShadowColumnsSQL = `ALTER TABLE %s
	ADD COLUMN IF NOT EXISTS embedding_next vector(%d),
	ADD COLUMN IF NOT EXISTS embedding_next_model text,
	ADD COLUMN IF NOT EXISTS embedded_next_hash uuid,
	ADD COLUMN IF NOT EXISTS embed_next_error text`

	// dropShadowColumnsSQL (table) drops the shadow columns of an aborted reindex.
	dropShadowColumnsSQL = `ALTER TABLE %s DROP COLUMN IF EXISTS embedding_next, DROP COLUMN IF EXISTS embedding_next_model,
	DROP COLUMN IF EXISTS embedded_next_hash, DROP COLUMN IF EXISTS embed_next_error`

	// countUnembeddedSQL (table) counts the rows whose text has no vector of the new model.
	countUnembeddedSQL = `SELECT count(*) FROM %s WHERE embedded_next_hash IS DISTINCT FROM content_hash`

	// unembeddedSQL (text expression, table) reads up to $2 rows after id $1 whose text has no
	// vector of the new model: id, content hash and the text to embed.
	unembeddedSQL = `SELECT id, content_hash, %s FROM %s
	WHERE id > $1 AND embedded_next_hash IS DISTINCT FROM content_hash ORDER BY id LIMIT $2`

	// entityTextSQL is the text an entity is embedded from, for unembeddedSQL.
	entityTextSQL = `cairn_entity_text(name, entity_type, context)`

	// episodeTextSQL is the text an episode is embedded from, for unembeddedSQL.
	episodeTextSQL = `cairn_episode_text(name, content)`

	// writeShadowVectorsSQL (table) writes a batch's new vectors, or why a row has none, into the
	// shadow columns of the rows whose text is still the one embedded. The writer flag keeps the
	// trigger from treating the write as an edit.
	writeShadowVectorsSQL = `WITH w AS (SELECT set_config('cairn.embed_writer', 'on', true))
	UPDATE %s x SET embedding_next = v.vec::vector, embedding_next_model = $5, embedded_next_hash = v.h, embed_next_error = v.why
	FROM w, unnest($1::bigint[], $2::uuid[], $3::text[], $4::text[]) AS v (id, h, vec, why)
	WHERE x.id = v.id AND x.content_hash = v.h`

	// indexValidSQL reads whether the index named $1 in the current schema is valid (no row: it
	// does not exist).
	indexValidSQL = `SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
	WHERE c.relname = $1 AND c.relnamespace = current_schema()::regnamespace`

	// indexExistsSQL reads whether the relation named $1 exists.
	indexExistsSQL = `SELECT to_regclass($1) IS NOT NULL`

	// dropIndexSQL (index) drops an index without blocking the table.
	dropIndexSQL = `DROP INDEX CONCURRENTLY IF EXISTS %s`

	// createHNSWIndexSQL (index, table, column) builds an HNSW cosine index without blocking the
	// table.
	createHNSWIndexSQL = `CREATE INDEX CONCURRENTLY %s ON %s USING hnsw (%s vector_cosine_ops) WITH (m = 16, ef_construction = 64)`

	// rebuildIndexSQL (index) rebuilds an index without blocking the table.
	rebuildIndexSQL = `REINDEX INDEX CONCURRENTLY %s`

	// lockTableSQL (table) locks a table against reads and writes until the transaction ends.
	lockTableSQL = `LOCK TABLE %s IN ACCESS EXCLUSIVE MODE`

	// renameColumnSQL (table, column, new name) renames a column.
	renameColumnSQL = `ALTER TABLE %s RENAME COLUMN %s TO %s`

	// renameIndexIfExistsSQL (index, new name) renames an index if there is one.
	renameIndexIfExistsSQL = `ALTER INDEX IF EXISTS %s RENAME TO %s`

	// renameIndexSQL (index, new name) renames an index.
	renameIndexSQL = `ALTER INDEX %s RENAME TO %s`

	// embedWriterOnSQL tells the embed trigger, until embedWriterOffSQL or the transaction's end,
	// that the transaction's writes are vectors, not edits.
	embedWriterOnSQL = `SELECT set_config('cairn.embed_writer', 'on', true)`

	// embedWriterOffSQL ends what embedWriterOnSQL began.
	embedWriterOffSQL = `SELECT set_config('cairn.embed_writer', 'off', true)`

	// switchedStatesSQL (table) sets each row's embed state from the vector it has after
	// the switch: embedded, or failed when the new model could not embed it.
	switchedStatesSQL = `UPDATE %s SET embed_state = CASE WHEN embedding IS NULL THEN 'failed' ELSE 'embedded' END,
	embed_failed_model = NULL, embed_lease_until = NULL, embedded_at = CASE WHEN embedding IS NULL THEN embedded_at ELSE now() END
	WHERE embed_state IS DISTINCT FROM CASE WHEN embedding IS NULL THEN 'failed' ELSE 'embedded' END`

	// dropPreviousColumnsSQL (table) drops the columns the switch replaced.
	dropPreviousColumnsSQL = `ALTER TABLE %s DROP COLUMN embedding_prev, DROP COLUMN embedding_model_prev, DROP COLUMN embedded_hash_prev, DROP COLUMN embed_error_prev`

	// recordModelSQL records the model a kind is embedded with.
	recordModelSQL = `INSERT INTO knowledge_models (kind, provider, model, dimensions) VALUES ($1, $2, $3, $4)
	ON CONFLICT (kind) DO UPDATE SET provider = EXCLUDED.provider, model = EXCLUDED.model, dimensions = EXCLUDED.dimensions, chosen_at = now()`
)
