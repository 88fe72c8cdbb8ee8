-- requires: vector
--
-- Embed claims that a dead worker gives up in seconds, and that only their holder may settle.
-- A worker claims a batch under a short lease and a claim token, renews the lease while its
-- embed call runs (cairn_knowledge_renew), and writes or settles only rows that still carry its
-- token. A worker that dies stops renewing, its rows are claimed again once the lease ends —
-- seconds, not the length of an embed call — and if it was only slow, its late vectors are
-- refused rather than written over the new holder's.

ALTER TABLE entities ADD COLUMN embed_claim uuid;
ALTER TABLE episodes ADD COLUMN embed_claim uuid;

-- Rows under a lease: those of a worker that died are claimed first once it runs out, and a
-- worker with nothing to claim learns when the next one does.
CREATE INDEX entities_leased ON entities (embed_lease_until) WHERE embed_state = 'pending' AND embed_lease_until IS NOT NULL;
CREATE INDEX episodes_leased ON episodes (embed_lease_until) WHERE embed_state = 'pending' AND embed_lease_until IS NOT NULL;

DROP FUNCTION cairn_knowledge_claim(text, integer, interval);
DROP FUNCTION cairn_knowledge_put_vectors(text, bigint[], uuid[], text[], text, text, integer);
DROP FUNCTION cairn_knowledge_settle(text, bigint[], uuid[], text, text);

-- Claims up to max_rows pending rows of a kind that no live lease holds under a new claim token,
-- and returns them with their text and the token: first rows whose lease ran out unsettled (a
-- worker died holding them; they have waited longest), then the oldest others.
CREATE FUNCTION cairn_knowledge_claim(kind text, max_rows integer, lease interval)
RETURNS TABLE (id bigint, content_hash uuid, body text, claim uuid)
LANGUAGE plpgsql AS $$
DECLARE
	token uuid := gen_random_uuid();
	n integer;
BEGIN
	PERFORM set_config('cairn.embed_writer', 'on', true);
	IF kind = 'entity' THEN
		RETURN QUERY
		WITH c AS (
			SELECT e.id FROM entities e
			WHERE e.embed_state = 'pending' AND e.embed_lease_until < now()
			ORDER BY e.embed_lease_until LIMIT max_rows
			FOR UPDATE SKIP LOCKED
		)
		UPDATE entities e SET embed_lease_until = now() + lease, embed_claim = token FROM c WHERE e.id = c.id
		RETURNING e.id, e.content_hash, cairn_entity_text(e.name, e.entity_type, e.context), token;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n < max_rows THEN
			RETURN QUERY
			WITH c AS (
				SELECT e.id FROM entities e
				WHERE e.embed_state = 'pending' AND e.embed_lease_until IS NULL
				ORDER BY e.updated_at LIMIT max_rows - n
				FOR UPDATE SKIP LOCKED
			)
			UPDATE entities e SET embed_lease_until = now() + lease, embed_claim = token FROM c WHERE e.id = c.id
			RETURNING e.id, e.content_hash, cairn_entity_text(e.name, e.entity_type, e.context), token;
		END IF;
	ELSIF kind = 'episode' THEN
		RETURN QUERY
		WITH c AS (
			SELECT p.id FROM episodes p
			WHERE p.embed_state = 'pending' AND p.embed_lease_until < now()
			ORDER BY p.embed_lease_until LIMIT max_rows
			FOR UPDATE SKIP LOCKED
		)
		UPDATE episodes p SET embed_lease_until = now() + lease, embed_claim = token FROM c WHERE p.id = c.id
		RETURNING p.id, p.content_hash, cairn_episode_text(p.name, p.content), token;
		GET DIAGNOSTICS n = ROW_COUNT;
		IF n < max_rows THEN
			RETURN QUERY
			WITH c AS (
				SELECT p.id FROM episodes p
				WHERE p.embed_state = 'pending' AND p.embed_lease_until IS NULL
				ORDER BY p.updated_at LIMIT max_rows - n
				FOR UPDATE SKIP LOCKED
			)
			UPDATE episodes p SET embed_lease_until = now() + lease, embed_claim = token FROM c WHERE p.id = c.id
			RETURNING p.id, p.content_hash, cairn_episode_text(p.name, p.content), token;
		END IF;
	ELSE
		RAISE EXCEPTION 'unknown knowledge kind %', kind;
	END IF;
	PERFORM set_config('cairn.embed_writer', 'off', true);
END
$$;

-- Extends the lease of the rows of ids that a claim still holds; returns how many it holds.
CREATE FUNCTION cairn_knowledge_renew(kind text, ids bigint[], claim uuid, lease interval)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	PERFORM set_config('cairn.embed_writer', 'on', true);
	IF kind = 'entity' THEN
		UPDATE entities SET embed_lease_until = now() + lease WHERE id = ANY (ids) AND embed_claim = claim AND embed_state = 'pending';
	ELSE
		UPDATE episodes SET embed_lease_until = now() + lease WHERE id = ANY (ids) AND embed_claim = claim AND embed_state = 'pending';
	END IF;
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM set_config('cairn.embed_writer', 'off', true);
	RETURN n;
END
$$;

-- Writes vectors (text form, one per id) made by a model for the hashes given, for the rows the
-- claim still holds, and returns how many rows took them; the claim's other rows (their text
-- changed meanwhile) are released at once to be claimed again. The first vectors of a kind
-- record its model; vectors of another model than the recorded one are refused (0 rows): a
-- reindex switched the kind meanwhile.
CREATE FUNCTION cairn_knowledge_put_vectors(kind text, ids bigint[], hashes uuid[], vectors text[],
	provider text, model text, dimensions integer, claim uuid)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
	want text := provider || '/' || model || '/' || dimensions;
BEGIN
	INSERT INTO knowledge_models AS m (kind, provider, model, dimensions)
	VALUES (kind, provider, model, dimensions) ON CONFLICT DO NOTHING;
	PERFORM set_config('cairn.embed_writer', 'on', true);
	-- The model is checked inside the UPDATE, after it has locked the table: a switch that
	-- committed while it waited is seen, and no row of the new column gets an old vector.
	IF kind = 'entity' THEN
		UPDATE entities e SET embedding = v.vec::vector, embedding_model = want, embedded_hash = v.h,
			embed_state = 'embedded', embed_error = NULL, embed_failed_model = NULL, embed_lease_until = NULL,
			embed_claim = NULL, embedded_at = now()
		FROM unnest(ids, hashes, vectors) AS v (id, h, vec)
		WHERE e.id = v.id AND e.content_hash = v.h AND e.embed_claim = claim
		  AND EXISTS (SELECT 1 FROM knowledge_models m WHERE m.kind = 'entity' AND m.label = want);
		GET DIAGNOSTICS n = ROW_COUNT;
		UPDATE entities SET embed_lease_until = NULL, embed_claim = NULL WHERE id = ANY (ids) AND embed_claim = claim;
	ELSE
		UPDATE episodes p SET embedding = v.vec::vector, embedding_model = want, embedded_hash = v.h,
			embed_state = 'embedded', embed_error = NULL, embed_failed_model = NULL, embed_lease_until = NULL,
			embed_claim = NULL, embedded_at = now()
		FROM unnest(ids, hashes, vectors) AS v (id, h, vec)
		WHERE p.id = v.id AND p.content_hash = v.h AND p.embed_claim = claim
		  AND EXISTS (SELECT 1 FROM knowledge_models m WHERE m.kind = 'episode' AND m.label = want);
		GET DIAGNOSTICS n = ROW_COUNT;
		UPDATE episodes SET embed_lease_until = NULL, embed_claim = NULL WHERE id = ANY (ids) AND embed_claim = claim;
	END IF;
	PERFORM set_config('cairn.embed_writer', 'off', true);
	RETURN n;
END
$$;

-- Marks rows of a claim that can never be embedded as they are (reason says why and what to do;
-- failed_model is set when no input is to blame), or, with reason NULL, releases them so that
-- another attempt can claim them at once. Rows the claim no longer holds are left alone.
CREATE FUNCTION cairn_knowledge_settle(kind text, ids bigint[], hashes uuid[], reason text, failed_model text, claim uuid)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
	n integer;
BEGIN
	PERFORM set_config('cairn.embed_writer', 'on', true);
	IF kind = 'entity' THEN
		UPDATE entities e SET embed_lease_until = NULL, embed_claim = NULL,
			embed_state = CASE WHEN reason IS NULL THEN e.embed_state ELSE 'failed' END,
			embed_error = coalesce(reason, e.embed_error),
			embed_failed_model = CASE WHEN reason IS NULL THEN e.embed_failed_model ELSE failed_model END
		FROM unnest(ids, hashes) AS v (id, h)
		WHERE e.id = v.id AND e.content_hash = v.h AND e.embed_state = 'pending' AND e.embed_claim = claim;
	ELSIF kind = 'episode' THEN
		UPDATE episodes p SET embed_lease_until = NULL, embed_claim = NULL,
			embed_state = CASE WHEN reason IS NULL THEN p.embed_state ELSE 'failed' END,
			embed_error = coalesce(reason, p.embed_error),
			embed_failed_model = CASE WHEN reason IS NULL THEN p.embed_failed_model ELSE failed_model END
		FROM unnest(ids, hashes) AS v (id, h)
		WHERE p.id = v.id AND p.content_hash = v.h AND p.embed_state = 'pending' AND p.embed_claim = claim;
	ELSE
		RAISE EXCEPTION 'unknown knowledge kind %', kind;
	END IF;
	GET DIAGNOSTICS n = ROW_COUNT;
	PERFORM set_config('cairn.embed_writer', 'off', true);
	RETURN n;
END
$$;

-- When the soonest live lease on a pending row of a kind ends (NULL: none), so that a worker
-- with nothing to claim knows when a dead worker's rows come free.
CREATE FUNCTION cairn_knowledge_next_lease_end(kind text)
RETURNS timestamptz
LANGUAGE sql STABLE AS $$
	SELECT CASE kind
		WHEN 'entity' THEN (SELECT min(embed_lease_until) FROM entities WHERE embed_state = 'pending' AND embed_lease_until >= now())
		ELSE (SELECT min(embed_lease_until) FROM episodes WHERE embed_state = 'pending' AND embed_lease_until >= now())
	END
$$;
