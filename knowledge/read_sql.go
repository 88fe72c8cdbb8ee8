package knowledge

// The SQL read.go runs.
const (
	// relationColumns is the select list and joins that scanRelation reads: a relation with
	// the names of its source and target.
	relationColumns = `r.id, r.source_id, s.name, r.relation_type, r.target_id, t.name, coalesce(r.fact, ''), r.episode_id, r.valid_at, r.invalid_at
	FROM relations r JOIN entities s ON s.id = r.source_id JOIN entities t ON t.id = r.target_id`

	// getEntitySQL reads an entity by id, with its embed state.
	getEntitySQL = `SELECT id, name, entity_type, coalesce(context, ''), attributes, embed_state,
		coalesce(embedding_model, ''), coalesce(embed_error, ''), created_at, updated_at
	FROM entities WHERE id = $1`

	// entityRelationsSQL reads an entity's relations in both directions, current ones first,
	// ended ones only when $2.
	entityRelationsSQL = `SELECT ` + relationColumns + `
	WHERE (r.source_id = $1 OR r.target_id = $1) AND (r.invalid_at IS NULL OR $2)
	ORDER BY r.invalid_at IS NOT NULL, r.valid_at DESC, r.id`

	// entityEpisodesSQL reads the latest $2 episodes that mention entity $1, newest first.
	entityEpisodesSQL = `SELECT p.id, coalesce(p.name, ''), p.episode_type, p.content, p.occurred_at
	FROM episode_mentions m JOIN episodes p ON p.id = m.episode_id
	WHERE m.entity_id = $1 ORDER BY p.occurred_at DESC, p.id DESC LIMIT $2`

	// getEpisodeSQL reads an episode by id, with its embed state.
	getEpisodeSQL = `SELECT id, coalesce(name, ''), episode_type, content, occurred_at, coalesce(source_description, ''),
		metadata, embed_state, coalesce(embedding_model, ''), coalesce(embed_error, ''), created_at
	FROM episodes WHERE id = $1`

	// episodeMentionsSQL reads the entities episode $1 mentions, by id.
	episodeMentionsSQL = `SELECT e.id, e.name, e.entity_type, coalesce(e.context, '')
	FROM episode_mentions m JOIN entities e ON e.id = m.entity_id WHERE m.episode_id = $1 ORDER BY e.id`

	// entitySummarySQL reads an entity without its relations, by id.
	entitySummarySQL = `SELECT id, name, entity_type, coalesce(context, '') FROM entities WHERE id = $1`

	// entitySummariesSQL reads the entities whose ids are in $1, without their relations, by id.
	entitySummariesSQL = `SELECT id, name, entity_type, coalesce(context, '') FROM entities WHERE id = ANY($1) ORDER BY id`

	// frontierRelationsSQL reads the relations of the entities in $1, in both directions: ended
	// ones too when $2, only those of the types in $3 unless it is NULL.
	frontierRelationsSQL = `SELECT ` + relationColumns + `
	WHERE (r.source_id = ANY($1) OR r.target_id = ANY($1)) AND (r.invalid_at IS NULL OR $2)
	  AND ($3::text[] IS NULL OR r.relation_type = ANY($3))
	ORDER BY r.id`
)
