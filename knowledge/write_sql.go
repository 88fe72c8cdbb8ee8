package knowledge

// The SQL write.go runs.
const (
	// upsertEntitySQL creates an entity or updates the one with the same type and name key
	// (summary replaced when given, attributes merged) and returns its id, whether it was
	// created, and its embed state.
	upsertEntitySQL = `
INSERT INTO entities (name, entity_type, context, attributes)
VALUES (btrim($1), $2, $3, $4::jsonb)
ON CONFLICT (entity_type, name_key) DO UPDATE SET
	context = coalesce(EXCLUDED.context, entities.context),
	attributes = entities.attributes || EXCLUDED.attributes,
	updated_at = CASE WHEN $3::text IS NULL AND EXCLUDED.attributes = '{}' THEN entities.updated_at ELSE now() END
RETURNING id, xmax = 0, embed_state`

	// insertEpisodeSQL records an episode and returns its id and embed state; no row when its
	// idempotency key was used.
	insertEpisodeSQL = `INSERT INTO episodes (name, content, episode_type, source_description, metadata, occurred_at, idempotency_key)
	VALUES (nullif(btrim($1), ''), $2, $3, nullif($4, ''), $5::jsonb, coalesce($6, now()), nullif($7, ''))
	ON CONFLICT (idempotency_key) DO NOTHING
	RETURNING id, embed_state`

	// episodeByKeySQL reads the episode recorded under an idempotency key: its id, embed state
	// and the ids of the entities it mentions.
	episodeByKeySQL = `SELECT id, embed_state, coalesce((SELECT array_agg(entity_id ORDER BY entity_id) FROM episode_mentions WHERE episode_id = e.id), '{}')
	FROM episodes e WHERE idempotency_key = $1`

	// insertMentionsSQL links an episode to the entities it mentions (those already linked stay).
	insertMentionsSQL = `INSERT INTO episode_mentions (episode_id, entity_id)
	SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING`

	// entityExistsSQL reads whether the entity with id $1 exists.
	entityExistsSQL = `SELECT EXISTS (SELECT 1 FROM entities WHERE id = $1)`

	// entityByTypeAndNameSQL finds the id of the entity of a type whose name has the name key
	// of $2.
	entityByTypeAndNameSQL = `SELECT id FROM entities WHERE entity_type = $1 AND name_key = cairn_name_key($2)`

	// entitiesByNameSQL finds up to ten entities, of any type, whose name has the name key of $1.
	entitiesByNameSQL = `SELECT id, entity_type FROM entities WHERE name_key = cairn_name_key($1) ORDER BY id LIMIT 10`

	// currentRelationSQL reads and locks the current fact of a source, relation type and target.
	currentRelationSQL = `SELECT id, fact FROM relations
	WHERE source_id = $1 AND relation_type = $2 AND target_id = $3 AND invalid_at IS NULL FOR UPDATE`

	// invalidateRelationSQL ends a fact at $2 (default now), never before it became valid.
	invalidateRelationSQL = `UPDATE relations SET invalid_at = greatest(valid_at, coalesce($2, now())) WHERE id = $1`

	// insertRelationSQL records a fact and returns its id.
	insertRelationSQL = `INSERT INTO relations (source_id, target_id, relation_type, fact, valid_at, episode_id)
	VALUES ($1, $2, $3, nullif(btrim($4), ''), coalesce($5, now()), $6) RETURNING id`
)
