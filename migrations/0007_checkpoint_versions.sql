-- Checkpoints as agent frameworks keep them (LangGraph's BaseCheckpointSaver):
--   * ids chosen by the caller, unique within a workflow and ordered as strings (byte order);
--   * channels with versions: a save names every channel's version and sends only the values of
--     new versions; a value is stored once per (workflow, namespace, channel, version);
--   * pending writes added to an existing checkpoint (cairn_put_writes), kept with it;
--   * no copy of the whole state on the newest checkpoint: a state is put together from its
--     values when it is read (cairn_checkpoint_state), so a save writes what changed and leaves
--     no dead copy of the state behind.
-- Large arrays (a message list) are stored element by element, each element once per workflow
-- under its content hash, in chunks of 16 element hashes, so a step that appends one message
-- stores that message, one chunk and a short list of chunk hashes.

-- Ids compare as bytes, as frameworks compare them (JavaScript's <, Python's <), whatever the
-- database's collation; the primary key becomes (workflow_id, id): two workflows may use the
-- same checkpoint id.
ALTER TABLE checkpoint_writes DROP CONSTRAINT checkpoint_writes_checkpoint_id_fkey;
ALTER TABLE checkpoint_writes DROP CONSTRAINT checkpoint_writes_pkey;
ALTER TABLE workflow_checkpoints DROP CONSTRAINT workflow_checkpoints_pkey;
DROP INDEX workflow_checkpoints_history;
ALTER TABLE workflow_checkpoints ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE checkpoint_writes ALTER COLUMN checkpoint_id TYPE text COLLATE "C";
ALTER TABLE workflow_checkpoints ADD PRIMARY KEY (workflow_id, id);
-- The newest checkpoint of a namespace, and a namespace's checkpoints newest first.
CREATE INDEX workflow_checkpoints_namespace ON workflow_checkpoints (workflow_id, namespace, id);

ALTER TABLE workflow_checkpoints
	-- channel → version, for checkpoints saved with versions (values in checkpoint_blobs under
	-- cairn_version_key); NULL for the others, whose values are named by channels.
	ADD COLUMN channel_versions jsonb,
	-- A JSON object the caller keeps with the checkpoint and gets back unchanged (LangGraph's
	-- v, ts and versions_seen).
	ADD COLUMN extra jsonb,
	-- Digest of what the save carried, so that saving the same caller-chosen id again is
	-- recognised as a retry (same digest) or refused as a conflict (another one).
	ADD COLUMN content_hash text;

-- Writes may come before their checkpoint: LangGraph queues a checkpoint's put behind the
-- previous one but writes to it at once, as the official savers allow (no foreign key to the
-- checkpoint; a deleted checkpoint's writes go with it, cairn_checkpoint_deleted).
ALTER TABLE checkpoint_writes ADD COLUMN task_path text NOT NULL DEFAULT '';
ALTER TABLE checkpoint_writes ADD PRIMARY KEY (workflow_id, checkpoint_id, task_id, idx);

CREATE FUNCTION cairn_checkpoint_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
	-- Retention and the rebuild delete the writes themselves (they run as maintenance, where a
	-- rebuild's replayed update of a checkpoint row is a delete and an insert).
	IF current_setting('cairn.maintenance', true) IS DISTINCT FROM 'on' THEN
		DELETE FROM checkpoint_writes w WHERE w.workflow_id = OLD.workflow_id AND w.checkpoint_id = OLD.id;
	END IF;
	RETURN NULL;
END
$$;
CREATE TRIGGER delete_writes AFTER DELETE ON workflow_checkpoints FOR EACH ROW EXECUTE FUNCTION cairn_checkpoint_deleted();

-- cairn_uuid7 is a time-ordered UUID (RFC 9562 version 7) as text: the default id of a checkpoint
-- inserted by raw SQL, so that ordering by id is ordering by time there too.
CREATE FUNCTION cairn_uuid7() RETURNS text LANGUAGE sql VOLATILE AS $$
	SELECT encode(set_bit(set_bit(overlay(uuid_send(gen_random_uuid())
		PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3) FROM 1 FOR 6),
		52, 1), 53, 1), 'hex')::uuid::text
$$;
ALTER TABLE workflow_checkpoints ALTER COLUMN id SET DEFAULT cairn_uuid7();

-- cairn_next_checkpoint_id is the id cairn gives a checkpoint the caller did not name: a UUIDv7
-- that sorts after the namespace's newest (p_prev), even within the same millisecond.
CREATE FUNCTION cairn_next_checkpoint_id(p_prev text) RETURNS text LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	id      text := cairn_uuid7();
	prev_ms bigint;
	b       bytea;
BEGIN
	IF p_prev IS NULL OR id > p_prev OR p_prev !~ '^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-' THEN
		RETURN id;
	END IF;
	-- Same millisecond (or a clock step back): one millisecond after the previous id.
	prev_ms := ('x' || lpad(replace(substr(p_prev, 1, 13), '-', ''), 16, '0'))::bit(64)::bigint;
	b := overlay(uuid_send(id::uuid) PLACING substring(int8send(prev_ms + 1) FROM 3) FROM 1 FOR 6);
	RETURN encode(b, 'hex')::uuid::text;
END
$$;

-- cairn_blob_hash is a value's content address in checkpoint_blobs: the first 16 bytes of
-- sha256 over its jsonb text, base64 (24 characters).
CREATE FUNCTION cairn_blob_hash(p_value jsonb) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT encode(substring(sha256(convert_to(p_value::text, 'UTF8')) FROM 1 FOR 16), 'base64')
$$;

-- cairn_version_key is where the value of a channel's version is stored in checkpoint_blobs: 'v'
-- and 24 base64 characters, which no content hash (24 characters) can be.
CREATE FUNCTION cairn_version_key(p_namespace text, p_channel text, p_version text) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
	SELECT 'v' || encode(substring(sha256(convert_to(jsonb_build_array(p_namespace, p_channel, p_version)::text, 'UTF8')) FROM 1 FOR 16), 'base64')
$$;

-- cairn_store_array stores an array's elements as blobs of the workflow and returns its
-- reference: {"a": [element hashes]} for up to 16 elements, else {"c": [chunk hashes]}, each
-- chunk a blob holding up to 16 element hashes. Appending to a long array changes only its last
-- chunk, so a new version of a growing message list costs the new message and one chunk.
CREATE FUNCTION cairn_store_array(p_workflow text, p_array jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	hashes text[];
	chunks jsonb;
BEGIN
	WITH e AS (
		SELECT x.value, x.ord, cairn_blob_hash(x.value) AS h FROM jsonb_array_elements(p_array) WITH ORDINALITY x(value, ord)
	), ins AS (
		INSERT INTO checkpoint_blobs (workflow_id, hash, value)
		SELECT DISTINCT ON (e.h) p_workflow, e.h, e.value FROM e
		ON CONFLICT DO NOTHING
	)
	SELECT coalesce(array_agg(e.h ORDER BY e.ord), '{}') INTO hashes FROM e;
	IF cardinality(hashes) <= 16 THEN
		RETURN jsonb_build_object('a', to_jsonb(hashes));
	END IF;
	WITH c AS (
		SELECT g.n, to_jsonb(hashes[g.n * 16 + 1 : g.n * 16 + 16]) AS value
		FROM generate_series(0, (cardinality(hashes) - 1) / 16) g(n)
	), h AS (
		SELECT c.n, c.value, cairn_blob_hash(c.value) AS h FROM c
	), ins AS (
		INSERT INTO checkpoint_blobs (workflow_id, hash, value)
		SELECT DISTINCT ON (h.h) p_workflow, h.h, h.value FROM h
		ON CONFLICT DO NOTHING
	)
	SELECT jsonb_agg(h.h ORDER BY h.n) INTO chunks FROM h;
	RETURN jsonb_build_object('c', chunks);
END
$$;

-- cairn_state_channels stores a state's values as blobs of the workflow and returns its
-- channel map (channel → blob hash, or an array reference of cairn_store_array); {"$value": …}
-- wraps a state that is not an object.
CREATE OR REPLACE FUNCTION cairn_state_channels(p_workflow text, p_state jsonb) RETURNS jsonb
LANGUAGE plpgsql AS $$
DECLARE
	m jsonb := '{}';
	c record;
BEGIN
	FOR c IN SELECT * FROM jsonb_each(CASE WHEN jsonb_typeof(p_state) = 'object' THEN p_state ELSE jsonb_build_object('$value', p_state) END) LOOP
		IF jsonb_typeof(c.value) = 'array' THEN
			m := m || jsonb_build_object(c.key, cairn_store_array(p_workflow, c.value));
		ELSE
			INSERT INTO checkpoint_blobs (workflow_id, hash, value) VALUES (p_workflow, cairn_blob_hash(c.value), c.value)
			ON CONFLICT DO NOTHING;
			m := m || jsonb_build_object(c.key, cairn_blob_hash(c.value));
		END IF;
	END LOOP;
	RETURN m;
END
$$;

-- cairn_version_ref is what is stored under a channel version's key: {"i": value} (the value
-- itself), or for an array of more than 2 KB the reference cairn_store_array returns.
CREATE FUNCTION cairn_version_ref(p_workflow text, p_value jsonb) RETURNS jsonb
LANGUAGE sql AS $$
	SELECT CASE WHEN jsonb_typeof(p_value) = 'array' AND pg_column_size(p_value) > 2048
		THEN cairn_store_array(p_workflow, p_value) ELSE jsonb_build_object('i', p_value) END
$$;

-- cairn_resolve_refs turns a map of channel → reference into channel → value: a blob hash, an
-- inline value {"i": …}, or an array {"a": [element hashes]} / {"c": [chunk hashes]}. Three
-- index scans whatever the number of channels: the chunks, then every element at once.
CREATE FUNCTION cairn_resolve_refs(p_workflow text, p_refs jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	WITH r AS (
		SELECT key, value FROM jsonb_each(coalesce(p_refs, '{}'))
	), ch AS (
		SELECT coalesce(jsonb_object_agg(b.hash, b.value), '{}') AS m FROM checkpoint_blobs b
		WHERE b.workflow_id = p_workflow
		  AND b.hash = ANY (ARRAY(SELECT jsonb_array_elements_text(r.value -> 'c') FROM r WHERE jsonb_typeof(r.value) = 'object' AND r.value ? 'c'))
	), lists AS (
		SELECT r.key, x.h, x.ord::bigint AS ord FROM r, jsonb_array_elements_text(r.value -> 'a') WITH ORDINALITY x(h, ord)
		WHERE jsonb_typeof(r.value) = 'object' AND r.value ? 'a'
		UNION ALL
		SELECT r.key, x.h, c.ord * 100 + x.ord FROM r, ch, jsonb_array_elements_text(r.value -> 'c') WITH ORDINALITY c(chunk, ord),
			jsonb_array_elements_text(ch.m -> c.chunk) WITH ORDINALITY x(h, ord)
		WHERE jsonb_typeof(r.value) = 'object' AND r.value ? 'c'
	), el AS (
		SELECT coalesce(jsonb_object_agg(b.hash, b.value), '{}') AS m FROM checkpoint_blobs b
		WHERE b.workflow_id = p_workflow
		  AND b.hash = ANY (ARRAY(SELECT DISTINCT h FROM lists UNION SELECT r.value #>> '{}' FROM r WHERE jsonb_typeof(r.value) = 'string'))
	)
	SELECT coalesce(jsonb_object_agg(r.key, CASE
		WHEN jsonb_typeof(r.value) = 'string' THEN el.m -> (r.value #>> '{}')
		WHEN r.value ? 'i' THEN r.value -> 'i'
		ELSE coalesce((SELECT jsonb_agg(el.m -> l.h ORDER BY l.ord) FROM lists l WHERE l.key = r.key), '[]') END), '{}')
	FROM r, el
$$;

CREATE OR REPLACE FUNCTION cairn_state_from_channels(p_workflow text, p_channels jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT CASE WHEN p_channels ? '$value' AND (SELECT count(*) FROM jsonb_object_keys(p_channels)) = 1
		THEN s -> '$value' ELSE s END
	FROM cairn_resolve_refs(p_workflow, p_channels) s
$$;

-- cairn_version_values returns channel → value for a map of channel → version: the channels
-- whose version has a stored value (a channel whose version was never saved is left out, as a
-- LangGraph checkpointer leaves it out).
CREATE FUNCTION cairn_version_values(p_workflow text, p_namespace text, p_versions jsonb) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	WITH v AS (
		SELECT key, cairn_version_key(p_namespace, key, value) AS k FROM jsonb_each_text(coalesce(p_versions, '{}'))
	), b AS (
		SELECT coalesce(jsonb_object_agg(b.hash, b.value), '{}') AS m FROM checkpoint_blobs b
		WHERE b.workflow_id = p_workflow AND b.hash = ANY (ARRAY(SELECT k FROM v))
	)
	SELECT cairn_resolve_refs(p_workflow, (SELECT coalesce(jsonb_object_agg(v.key, b.m -> v.k), '{}') FROM v, b WHERE b.m ? v.k))
$$;

-- cairn_checkpoint_state is a checkpoint's state, put together from its values: what
-- checkpoint_load returns, for SQL too (SELECT cairn_checkpoint_state(c) FROM
-- workflow_checkpoints c WHERE …). A checkpoint written by raw SQL has its state in state.
CREATE FUNCTION cairn_checkpoint_state(c workflow_checkpoints) RETURNS jsonb
LANGUAGE sql STABLE COST 1000 AS $$
	SELECT CASE
		WHEN c.channel_versions IS NOT NULL THEN cairn_version_values(c.workflow_id, c.namespace, c.channel_versions)
		WHEN c.channels IS NOT NULL THEN cairn_state_from_channels(c.workflow_id, c.channels)
		ELSE c.state END
$$;

-- cairn_pending_writes is a checkpoint's pending writes in the order frameworks replay them
-- (LangGraph's writesSortKey: task path, task id, index; strings by code point):
-- [{task_id, channel, value, idx, task_path}].
CREATE FUNCTION cairn_pending_writes(p_workflow text, p_checkpoint text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
	SELECT coalesce(jsonb_agg(jsonb_build_object('task_id', w.task_id, 'channel', w.channel, 'value', w.value, 'idx', w.idx, 'task_path', w.task_path)
		ORDER BY w.task_path COLLATE "C", w.task_id COLLATE "C", w.idx), '[]')
	FROM checkpoint_writes w WHERE w.workflow_id = p_workflow AND w.checkpoint_id = p_checkpoint
$$;

-- The special channels of LangGraph's writes, at fixed negative indexes (WRITES_IDX_MAP): a
-- write to them replaces the task's earlier one; every other write is kept once per (task,
-- index), the first one winning.
CREATE FUNCTION cairn_special_write_idx(p_channel text) RETURNS int LANGUAGE sql IMMUTABLE AS $$
	SELECT CASE p_channel WHEN '__error__' THEN -1 WHEN '__scheduled__' THEN -2
		WHEN '__interrupt__' THEN -3 WHEN '__resume__' THEN -4 END
$$;

-- cairn_insert_writes writes a CheckpointSaved's or PendingWritesPut's writes (the save and the
-- rebuild share it). p_replace: every write goes to a special channel, so they replace.
CREATE FUNCTION cairn_insert_writes(p_workflow text, p_checkpoint text, p_writes jsonb, p_task text, p_path text,
	p_replace boolean, p_ts timestamptz) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	IF p_replace THEN
		INSERT INTO checkpoint_writes AS cw (workflow_id, checkpoint_id, task_id, idx, channel, value, task_path, created_at)
		-- One row per index, the last write to it (a statement cannot update a row twice).
		SELECT DISTINCT ON (coalesce(p_task, x.w ->> 'task_id'), (x.w ->> 'idx')::int)
			p_workflow, p_checkpoint, coalesce(p_task, x.w ->> 'task_id'), (x.w ->> 'idx')::int, x.w ->> 'channel', x.w -> 'value',
			coalesce(p_path, x.w ->> 'task_path', ''), p_ts
		FROM jsonb_array_elements(p_writes) WITH ORDINALITY x(w, ord)
		ORDER BY coalesce(p_task, x.w ->> 'task_id'), (x.w ->> 'idx')::int, x.ord DESC
		ON CONFLICT (workflow_id, checkpoint_id, task_id, idx) DO UPDATE
			SET channel = EXCLUDED.channel, value = EXCLUDED.value, task_path = EXCLUDED.task_path, created_at = EXCLUDED.created_at;
	ELSE
		INSERT INTO checkpoint_writes (workflow_id, checkpoint_id, task_id, idx, channel, value, task_path, created_at)
		SELECT p_workflow, p_checkpoint, coalesce(p_task, x.w ->> 'task_id'), (x.w ->> 'idx')::int, x.w ->> 'channel', x.w -> 'value',
			coalesce(p_path, x.w ->> 'task_path', ''), p_ts
		FROM jsonb_array_elements(p_writes) x(w)
		ON CONFLICT DO NOTHING;
	END IF;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END
$$;

-- cairn_number_writes gives each write its index: the one it names, else its channel's special
-- index, else its place in the list.
CREATE FUNCTION cairn_number_writes(p_writes jsonb) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
	SELECT coalesce(jsonb_agg(x.w || jsonb_build_object('idx',
		coalesce((x.w ->> 'idx')::int, cairn_special_write_idx(x.w ->> 'channel'), x.ord::int - 1)) ORDER BY x.ord), '[]')
	FROM jsonb_array_elements(coalesce(nullif(p_writes, 'null'), '[]')) WITH ORDINALITY x(w, ord)
$$;

DROP FUNCTION cairn_checkpoint_save(text, text, text, text, text, jsonb, bigint, jsonb, jsonb, jsonb, text);
DROP FUNCTION cairn_apply_checkpoint_saved(text, bigint, jsonb, jsonb, text);

-- cairn_checkpoint_save saves a checkpoint in one round trip: the CheckpointSaved event on the
-- workflow's stream (with the optimistic-concurrency check and idempotency key of
-- cairn_append_events) and the projections, in the caller's transaction.
--   p_checkpoint: the caller's id, or NULL for one cairn makes (after the namespace's newest).
--     The same caller id again with the same content returns the first save (duplicate); with
--     other content it raises CA004.
--   p_versions: channel → version, or NULL. With versions, p_state holds the values of new
--     versions only; the other channels' values are those saved earlier under their versions.
--   p_parent: NULL means the namespace's newest, unless p_checkpoint is given (then: no parent).
--   CA002: the workflow does not exist; CA003: it is finished and takes no more checkpoints.
CREATE FUNCTION cairn_checkpoint_save(
	p_workflow text, p_checkpoint text, p_namespace text, p_node text, p_parent text, p_state jsonb, p_versions jsonb,
	p_extra jsonb, p_expected bigint, p_metadata jsonb, p_writes jsonb, p_event_meta jsonb, p_key text)
RETURNS TABLE (checkpoint_id text, parent_id text, version bigint, duplicate boolean, created_at timestamptz)
LANGUAGE plpgsql AS $$
DECLARE
	w_status text;
	prev     text;
	parent   text;
	cpid     text := p_checkpoint;
	d        jsonb;
	refs     jsonb;
	digest   text;
	found_cp record;
	app      record;
	step_id  bigint;
	writes   jsonb := cairn_number_writes(p_writes);
	ts       timestamptz := clock_timestamp();
BEGIN
	SELECT w.status INTO w_status FROM workflows w WHERE w.id = p_workflow FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'workflow % does not exist', p_workflow USING ERRCODE = 'CA002';
	END IF;
	IF p_versions IS NOT NULL THEN
		-- The values of the new versions, stored under their keys (the first value of a version
		-- wins); refs says where each went, for the digest.
		SELECT coalesce(jsonb_object_agg(s.key, cairn_version_ref(p_workflow, s.value)), '{}') INTO refs
		FROM jsonb_each(p_state) s;
		INSERT INTO checkpoint_blobs (workflow_id, hash, value)
		SELECT p_workflow, cairn_version_key(p_namespace, r.key, p_versions ->> r.key), r.value FROM jsonb_each(refs) r
		ON CONFLICT DO NOTHING;
	ELSE
		refs := cairn_state_channels(p_workflow, p_state);
	END IF;
	IF p_checkpoint IS NOT NULL THEN
		digest := cairn_blob_hash(jsonb_build_array(p_namespace, p_node, p_parent, refs, p_versions, p_extra, p_metadata, writes));
		SELECT c.content_hash, c.parent_id, c.version, c.created_at INTO found_cp
		FROM workflow_checkpoints c WHERE c.workflow_id = p_workflow AND c.id = p_checkpoint;
		IF FOUND THEN
			IF found_cp.content_hash IS DISTINCT FROM digest THEN
				RAISE EXCEPTION 'checkpoint % of workflow % was saved before with other content', p_checkpoint, p_workflow
					USING ERRCODE = 'CA004', DETAIL = 'checkpoint_id=' || p_checkpoint;
			END IF;
			RETURN QUERY SELECT p_checkpoint, found_cp.parent_id, found_cp.version, true, found_cp.created_at;
			RETURN;
		END IF;
	END IF;
	IF w_status IN ('completed', 'failed', 'cancelled') THEN
		RAISE EXCEPTION 'workflow % is %, so it takes no more checkpoints', p_workflow, w_status USING ERRCODE = 'CA003';
	END IF;
	SELECT c.id INTO prev FROM workflow_checkpoints c
	WHERE c.workflow_id = p_workflow AND c.namespace = p_namespace
	ORDER BY c.id DESC LIMIT 1;
	IF cpid IS NULL THEN
		cpid := cairn_next_checkpoint_id(prev);
		parent := coalesce(p_parent, prev);
	ELSE
		parent := p_parent;
	END IF;
	IF p_node IS NOT NULL THEN
		step_id := nextval(pg_get_serial_sequence('workflow_steps', 'id'));
	END IF;

	-- The event carries everything the projections hold (but the blobs it names), so
	-- cairn_rebuild_workflows can rebuild them exactly.
	d := jsonb_build_object('checkpoint_id', cpid, 'namespace', p_namespace, 'node_id', p_node,
		'parent_id', parent, 'metadata', p_metadata, 'pending_writes', writes, 'step_id', step_id, 'created_at', ts);
	IF p_versions IS NOT NULL THEN
		d := d || jsonb_build_object('channel_versions', p_versions);
	ELSE
		d := d || jsonb_build_object('channels', refs);
	END IF;
	IF p_extra IS NOT NULL THEN
		d := d || jsonb_build_object('extra', p_extra);
	END IF;
	IF digest IS NOT NULL THEN
		d := d || jsonb_build_object('content_hash', digest);
	END IF;
	SELECT * INTO app FROM cairn_append_events('workflow:' || p_workflow, p_expected, ARRAY['CheckpointSaved'],
		ARRAY[d], ARRAY[p_event_meta], p_key);
	IF app.duplicate THEN
		RETURN QUERY SELECT e.data ->> 'checkpoint_id', e.data ->> 'parent_id', e.version, true, coalesce(c.created_at, e.created_at)
			FROM events e LEFT JOIN workflow_checkpoints c ON c.workflow_id = p_workflow AND c.id = e.data ->> 'checkpoint_id'
			WHERE e.position = app.positions[1];
		RETURN;
	END IF;
	PERFORM cairn_apply_checkpoint_saved(p_workflow, app.last_version, d);
	RETURN QUERY SELECT cpid, parent, app.last_version, false, ts;
END
$$;

-- cairn_apply_checkpoint_saved updates the projections for a CheckpointSaved event; the save and
-- the rebuild share it. Events of before 0007 named their state's values in channels and
-- cleared the previous newest checkpoint's full copy of the state; nothing keeps one now.
CREATE FUNCTION cairn_apply_checkpoint_saved(p_workflow text, p_version bigint, d jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	ts   timestamptz := (d ->> 'created_at')::timestamptz;
	ns   text := coalesce(d ->> 'namespace', '');
	cpid text := d ->> 'checkpoint_id';
BEGIN
	INSERT INTO workflow_checkpoints (id, workflow_id, namespace, node_id, parent_id, channels, channel_versions, extra,
		content_hash, metadata, version, created_at)
	VALUES (cpid, p_workflow, ns, d ->> 'node_id', d ->> 'parent_id', d -> 'channels', d -> 'channel_versions', d -> 'extra',
		d ->> 'content_hash', coalesce(d -> 'metadata', '{}'), p_version, ts);
	-- Writes of events before 0007 had no idx of their own: their place in the list.
	PERFORM cairn_insert_writes(p_workflow, cpid, cairn_number_writes(d -> 'pending_writes'), NULL, NULL, false, ts);
	IF d ->> 'node_id' IS NOT NULL THEN
		INSERT INTO workflow_steps (id, workflow_id, step_name, checkpoint_id, created_at)
		VALUES ((d ->> 'step_id')::bigint, p_workflow, d ->> 'node_id', cpid, ts);
	END IF;
	UPDATE workflows w SET version = p_version,
		head_checkpoint_id = CASE WHEN ns = '' AND (w.head_checkpoint_id IS NULL OR cpid > w.head_checkpoint_id COLLATE "C")
			THEN cpid ELSE w.head_checkpoint_id END,
		status = CASE WHEN w.status = 'pending' THEN 'running' ELSE w.status END,
		updated_at = ts
	WHERE w.id = p_workflow;
END
$$;

-- cairn_put_writes adds a task's writes to an existing checkpoint in one round trip: the
-- PendingWritesPut event and the rows, in the caller's transaction. p_writes is
-- [{channel, value, idx?}]; an idx defaults to the channel's special index, else the write's
-- place in the list. When every write goes to a special channel they replace the task's earlier
-- ones at those indexes; otherwise the first write of a (task, idx) wins. A write to
-- __interrupt__ sets a running workflow interrupted (WorkflowInterrupted, the write's value as
-- payload), one to __resume__ sets an interrupted one running (WorkflowResumed), in the same
-- append. The checkpoint need not be saved yet (its save may be on its way).
--   CA002: no such workflow; CA005: the checkpoint is in another namespace.
CREATE FUNCTION cairn_put_writes(p_workflow text, p_checkpoint text, p_namespace text, p_task text, p_path text,
	p_writes jsonb, p_event_meta jsonb)
RETURNS TABLE (version bigint, written int, status text)
LANGUAGE plpgsql AS $$
DECLARE
	w_status text;
	ws       jsonb;
	replace  boolean;
	d        jsonb;
	types    text[] := ARRAY['PendingWritesPut'];
	datas    jsonb[];
	metas    jsonb[] := ARRAY[p_event_meta];
	intr     jsonb;
	resp     jsonb;
	app      record;
	n        int;
	ts       timestamptz := clock_timestamp();
BEGIN
	SELECT w.status INTO w_status FROM workflows w WHERE w.id = p_workflow FOR UPDATE;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'workflow % does not exist', p_workflow USING ERRCODE = 'CA002';
	END IF;
	PERFORM 1 FROM workflow_checkpoints c WHERE c.workflow_id = p_workflow AND c.id = p_checkpoint AND c.namespace <> p_namespace;
	IF FOUND THEN
		RAISE EXCEPTION 'checkpoint % of workflow % is not in namespace "%"', p_checkpoint, p_workflow, p_namespace
			USING ERRCODE = 'CA005';
	END IF;
	SELECT jsonb_agg(x.w || jsonb_build_object('idx', coalesce((x.w ->> 'idx')::int, cairn_special_write_idx(x.w ->> 'channel'), x.ord::int - 1)) ORDER BY x.ord),
		bool_and(cairn_special_write_idx(x.w ->> 'channel') IS NOT NULL)
	INTO ws, replace
	FROM jsonb_array_elements(p_writes) WITH ORDINALITY x(w, ord);
	d := jsonb_build_object('checkpoint_id', p_checkpoint, 'namespace', p_namespace, 'task_id', p_task, 'task_path', p_path,
		'writes', ws, 'replace', replace, 'created_at', ts);
	datas := ARRAY[d];
	SELECT x.w -> 'value' INTO intr FROM jsonb_array_elements(ws) x(w) WHERE x.w ->> 'channel' = '__interrupt__' LIMIT 1;
	SELECT x.w -> 'value' INTO resp FROM jsonb_array_elements(ws) x(w) WHERE x.w ->> 'channel' = '__resume__' LIMIT 1;
	IF intr IS NOT NULL AND w_status IN ('pending', 'running') THEN
		types := types || 'WorkflowInterrupted'::text;
		datas := datas || jsonb_build_object('reason', 'interrupt', 'payload', intr, 'at', ts, 'task_id', p_task, 'checkpoint_id', p_checkpoint);
		metas := metas || p_event_meta;
		w_status := 'interrupted';
	ELSIF resp IS NOT NULL AND w_status = 'interrupted' THEN
		types := types || 'WorkflowResumed'::text;
		datas := datas || jsonb_build_object('response', resp, 'task_id', p_task, 'checkpoint_id', p_checkpoint);
		metas := metas || p_event_meta;
		w_status := 'running';
	END IF;
	SELECT * INTO app FROM cairn_append_events('workflow:' || p_workflow, -1, types, datas, metas);
	n := cairn_apply_writes_put(p_workflow, app.first_version, d);
	IF cardinality(types) = 2 THEN
		-- now(): the event's created_at, which a rebuild gives the workflow.
		PERFORM cairn_apply_status_event(p_workflow, app.last_version, types[2], datas[2], now());
	END IF;
	RETURN QUERY SELECT app.last_version, n, w_status;
END
$$;

-- cairn_apply_writes_put applies a PendingWritesPut event (the put and the rebuild share it).
CREATE FUNCTION cairn_apply_writes_put(p_workflow text, p_version bigint, d jsonb) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	n int;
BEGIN
	n := cairn_insert_writes(p_workflow, d ->> 'checkpoint_id', d -> 'writes', d ->> 'task_id', coalesce(d ->> 'task_path', ''),
		coalesce((d ->> 'replace')::boolean, false), (d ->> 'created_at')::timestamptz);
	UPDATE workflows w SET version = p_version, updated_at = (d ->> 'created_at')::timestamptz WHERE w.id = p_workflow;
	RETURN n;
END
$$;

-- cairn_apply_status_event applies a WorkflowInterrupted or WorkflowResumed event to workflows.
CREATE FUNCTION cairn_apply_status_event(p_workflow text, p_version bigint, p_type text, d jsonb, p_at timestamptz) RETURNS void
LANGUAGE sql AS $$
	UPDATE workflows SET
		status = CASE p_type WHEN 'WorkflowInterrupted' THEN 'interrupted' ELSE 'running' END,
		interrupt = CASE p_type WHEN 'WorkflowInterrupted' THEN d END,
		version = p_version, updated_at = p_at
	WHERE id = p_workflow
$$;

-- The raw-write capture: a raw INSERT makes the new checkpoint the head only if its id sorts last.
CREATE OR REPLACE FUNCTION cairn_capture_raw_write() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
	wid    text;
	stream text;
	prior  text := current_setting('cairn.appended', true);
	r      jsonb;
	app    record;
BEGIN
	-- Decide cheaply first: this runs on every write cairn itself makes to these tables too.
	IF TG_TABLE_NAME = 'workflows' THEN
		wid := CASE WHEN TG_OP = 'DELETE' THEN OLD.id ELSE NEW.id END;
	ELSE
		wid := CASE WHEN TG_OP = 'DELETE' THEN OLD.workflow_id ELSE NEW.workflow_id END;
	END IF;
	stream := 'workflow:' || wid;
	IF prior = stream OR current_setting('cairn.maintenance', true) = 'on'
	   OR (TG_OP = 'DELETE' AND TG_TABLE_NAME <> 'workflows' AND pg_trigger_depth() > 1) THEN
		RETURN NULL;
	END IF;
	r := to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END);
	SELECT * INTO app FROM cairn_append_events(stream, -1, ARRAY['RawRowWritten'],
		ARRAY[jsonb_build_object('op', TG_OP, 'table', TG_TABLE_NAME, 'row', r,
			'old', CASE WHEN TG_OP = 'UPDATE' THEN to_jsonb(OLD) END)],
		ARRAY[jsonb_build_object('actor', 'sql:' || session_user, 'extra', jsonb_build_object('application_name', current_setting('application_name', true)))]);
	-- Keep the workflow's version equal to its stream's (cairn.appended now names the stream,
	-- so this update is not captured again).
	IF NOT (TG_TABLE_NAME = 'workflows' AND TG_OP = 'DELETE') THEN
		UPDATE workflows w SET version = app.last_version,
			head_checkpoint_id = CASE WHEN TG_TABLE_NAME = 'workflow_checkpoints' AND TG_OP = 'INSERT' AND coalesce(r ->> 'namespace', '') = ''
				AND (w.head_checkpoint_id IS NULL OR (r ->> 'id') COLLATE "C" > w.head_checkpoint_id COLLATE "C")
				THEN r ->> 'id' ELSE w.head_checkpoint_id END
		WHERE w.id = wid;
	END IF;
	-- The next raw write in this transaction must be captured too.
	PERFORM set_config('cairn.appended', coalesce(prior, ''), true);
	RETURN NULL;
END
$$;

-- cairn_rebuild_workflows, as in 0003, with the events of 0007 (PendingWritesPut, versions),
-- raw rows of workflow_checkpoints and checkpoint_writes keyed by their workflow too, and
-- retention's checkpoints named by (workflow, id).
CREATE OR REPLACE FUNCTION cairn_rebuild_workflows() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
	e    record;
	wid  text;
	n    bigint := 0;
	cols text;
	keyc text;
BEGIN
	PERFORM set_config('cairn.maintenance', 'on', true);
	-- Cascades to checkpoints, steps and writes; the blobs stay (maintenance).
	DELETE FROM workflows;
	FOR e IN SELECT * FROM events WHERE stream_id LIKE 'workflow:%' ORDER BY stream_id, version LOOP
		wid := substr(e.stream_id, length('workflow:') + 1);
		n := n + 1;
		CASE e.type
		WHEN 'WorkflowStarted' THEN
			INSERT INTO workflows (id, name, status, input, metadata, version, parent_workflow_id, forked_from, created_at, updated_at)
			VALUES (wid, coalesce(e.data ->> 'name', ''), 'running', nullif(e.data -> 'input', 'null'),
				coalesce(e.data -> 'metadata', '{}'), e.version, e.data ->> 'parent_workflow_id', e.data ->> 'forked_from',
				e.created_at, e.created_at);
		WHEN 'CheckpointSaved' THEN
			PERFORM cairn_apply_checkpoint_saved(wid, e.version, e.data);
		WHEN 'PendingWritesPut' THEN
			PERFORM cairn_apply_writes_put(wid, e.version, e.data);
		WHEN 'WorkflowInterrupted' THEN
			UPDATE workflows SET status = 'interrupted', interrupt = e.data, version = e.version, updated_at = e.created_at WHERE id = wid;
		WHEN 'WorkflowResumed' THEN
			UPDATE workflows SET status = 'running', interrupt = NULL, version = e.version, updated_at = e.created_at WHERE id = wid;
		WHEN 'WorkflowCompleted' THEN
			UPDATE workflows SET status = 'completed', output = nullif(e.data -> 'output', 'null'), interrupt = NULL,
				version = e.version, updated_at = e.created_at WHERE id = wid;
		WHEN 'WorkflowFailed' THEN
			UPDATE workflows SET status = 'failed', error = e.data ->> 'error', interrupt = NULL,
				version = e.version, updated_at = e.created_at WHERE id = wid;
		WHEN 'WorkflowDeleted' THEN
			DELETE FROM workflows WHERE id = wid;
		WHEN 'RawRowWritten' THEN
			-- Rows are keyed by their id column, checkpoints and writes within their workflow. An
			-- UPDATE is replayed as delete and insert of the whole row; for workflows that would
			-- cascade, so it is an update.
			keyc := CASE e.data ->> 'table'
				WHEN 'workflow_checkpoints' THEN 'workflow_id = $1 ->> ''workflow_id'' AND id = $1 ->> ''id'''
				WHEN 'checkpoint_writes' THEN 'workflow_id = $1 ->> ''workflow_id'' AND checkpoint_id = $1 ->> ''checkpoint_id'' AND task_id = $1 ->> ''task_id'' AND idx = ($1 ->> ''idx'')::int'
				ELSE 'id::text = ($1 ->> ''id'')' END;
			IF e.data ->> 'op' = 'DELETE' OR (e.data ->> 'op' = 'UPDATE' AND e.data ->> 'table' <> 'workflows') THEN
				EXECUTE format('DELETE FROM %I WHERE ' || keyc, e.data ->> 'table')
					USING coalesce(nullif(e.data -> 'old', 'null'), e.data -> 'row');
			END IF;
			IF e.data ->> 'op' = 'DELETE' AND e.data ->> 'table' = 'workflow_checkpoints' THEN
				DELETE FROM checkpoint_writes w WHERE w.workflow_id = e.data -> 'row' ->> 'workflow_id' AND w.checkpoint_id = e.data -> 'row' ->> 'id';
			END IF;
			SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO cols
			FROM pg_attribute a
			WHERE a.attrelid = (e.data ->> 'table')::regclass AND a.attnum > 0 AND NOT a.attisdropped;
			IF e.data ->> 'op' = 'INSERT' OR (e.data ->> 'op' = 'UPDATE' AND e.data ->> 'table' <> 'workflows') THEN
				EXECUTE format('INSERT INTO %I (%s) SELECT %s FROM jsonb_populate_record(NULL::%I, $1)',
					e.data ->> 'table', cols, cols, e.data ->> 'table') USING e.data -> 'row';
			ELSIF e.data ->> 'op' = 'UPDATE' THEN
				EXECUTE format('UPDATE workflows t SET (%s) = (SELECT %s FROM jsonb_populate_record(NULL::workflows, $1)) WHERE t.id = $1 ->> ''id''',
					cols, cols) USING e.data -> 'row';
			END IF;
			IF NOT (e.data ->> 'table' = 'workflows' AND e.data ->> 'op' = 'DELETE') THEN
				UPDATE workflows w SET version = e.version,
					head_checkpoint_id = CASE WHEN e.data ->> 'table' = 'workflow_checkpoints' AND e.data ->> 'op' = 'INSERT'
						AND coalesce(e.data -> 'row' ->> 'namespace', '') = ''
						AND (w.head_checkpoint_id IS NULL OR (e.data -> 'row' ->> 'id') COLLATE "C" > w.head_checkpoint_id COLLATE "C")
						THEN e.data -> 'row' ->> 'id' ELSE w.head_checkpoint_id END
				WHERE w.id = wid;
			END IF;
		ELSE
			RAISE EXCEPTION 'cannot rebuild from event type % (stream %, version %): this cairn is older than the events', e.type, e.stream_id, e.version;
		END CASE;
	END LOOP;
	-- Retention removed these checkpoints after their events were written (cairn_prune_checkpoints):
	-- by id before 0007, by [workflow, id] since.
	DELETE FROM workflow_checkpoints c WHERE c.id IN (
		SELECT jsonb_array_elements_text(ev.data -> 'checkpoint_ids') FROM events ev WHERE ev.stream_id = 'cairn:retention');
	DELETE FROM workflow_checkpoints c WHERE (c.workflow_id, c.id) IN (
		SELECT p ->> 0, p ->> 1 FROM events ev, jsonb_array_elements(ev.data -> 'checkpoints') p WHERE ev.stream_id = 'cairn:retention');
	DELETE FROM checkpoint_writes w WHERE (w.workflow_id, w.checkpoint_id) IN (
		SELECT p ->> 0, p ->> 1 FROM events ev, jsonb_array_elements(ev.data -> 'checkpoints') p WHERE ev.stream_id = 'cairn:retention');
	-- Sequences must stay ahead of the ids the rebuild inserted.
	PERFORM setval(pg_get_serial_sequence('workflow_steps', 'id'), greatest(coalesce((SELECT max(id) FROM workflow_steps), 0), 1));
	RETURN n;
END
$$;

-- cairn_live_blobs lists the blob keys the checkpoints of a workflow use: content hashes named
-- by channel maps, version keys, and the chunks and elements of arrays under either.
CREATE FUNCTION cairn_live_blobs(p_workflow text) RETURNS SETOF text
LANGUAGE sql STABLE AS $$
	WITH top AS (
		SELECT c.value FROM workflow_checkpoints cp, jsonb_each(coalesce(cp.channels, '{}')) c WHERE cp.workflow_id = p_workflow
		UNION ALL
		SELECT b.value FROM workflow_checkpoints cp, jsonb_each_text(coalesce(cp.channel_versions, '{}')) v, checkpoint_blobs b
		WHERE cp.workflow_id = p_workflow AND b.workflow_id = p_workflow AND b.hash = cairn_version_key(cp.namespace, v.key, v.value)
	), keys AS (
		SELECT cairn_version_key(cp.namespace, v.key, v.value) AS k FROM workflow_checkpoints cp, jsonb_each_text(coalesce(cp.channel_versions, '{}')) v
		WHERE cp.workflow_id = p_workflow
		UNION SELECT t.value #>> '{}' FROM top t WHERE jsonb_typeof(t.value) = 'string'
		UNION SELECT h FROM top t, jsonb_array_elements_text(t.value -> 'a') h WHERE jsonb_typeof(t.value) = 'object'
		UNION SELECT h FROM top t, jsonb_array_elements_text(t.value -> 'c') h WHERE jsonb_typeof(t.value) = 'object'
		UNION SELECT e FROM top t, jsonb_array_elements_text(t.value -> 'c') h, checkpoint_blobs b, jsonb_array_elements_text(b.value) e
		WHERE jsonb_typeof(t.value) = 'object' AND b.workflow_id = p_workflow AND b.hash = h
	)
	SELECT k FROM keys
$$;

-- cairn_prune_checkpoints, as in 0003, naming the deleted checkpoints by [workflow, id] and
-- keeping every blob a remaining checkpoint uses (cairn_live_blobs).
CREATE OR REPLACE FUNCTION cairn_prune_checkpoints(p_keep_last int, p_max_age interval, p_batch int) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
	ids  jsonb;
	wids text[];
	wid  text;
	live text[];
BEGIN
	IF coalesce(p_keep_last, 0) <= 0 AND p_max_age IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM set_config('cairn.maintenance', 'on', true);
	WITH ranked AS (
		SELECT c.id, c.workflow_id, c.created_at,
			row_number() OVER (PARTITION BY c.workflow_id, c.namespace ORDER BY c.id DESC) AS rn
		FROM workflow_checkpoints c JOIN workflows w ON w.id = c.workflow_id
		WHERE w.status <> 'interrupted'
	), doomed AS (
		SELECT r.workflow_id, r.id FROM ranked r
		WHERE r.rn > 1 AND ((p_keep_last > 0 AND r.rn > p_keep_last) OR (p_max_age IS NOT NULL AND r.created_at < now() - p_max_age))
		LIMIT p_batch
	), del AS (
		DELETE FROM workflow_checkpoints c USING doomed d WHERE c.workflow_id = d.workflow_id AND c.id = d.id RETURNING c.id, c.workflow_id
	), delw AS (
		DELETE FROM checkpoint_writes w USING doomed d WHERE w.workflow_id = d.workflow_id AND w.checkpoint_id = d.id
	)
	SELECT jsonb_agg(jsonb_build_array(del.workflow_id, del.id)), array_agg(DISTINCT del.workflow_id) INTO ids, wids FROM del;
	IF ids IS NULL THEN
		RETURN 0;
	END IF;
	PERFORM cairn_append_events('cairn:retention', -1, ARRAY['CheckpointsPruned'],
		ARRAY[jsonb_build_object('checkpoints', ids, 'keep_last', p_keep_last, 'max_age', p_max_age::text)],
		ARRAY['{"actor": "retention"}'::jsonb]);
	FOREACH wid IN ARRAY wids LOOP
		live := ARRAY(SELECT cairn_live_blobs(wid));
		DELETE FROM checkpoint_blobs b WHERE b.workflow_id = wid AND NOT (b.hash = ANY (live));
	END LOOP;
	RETURN jsonb_array_length(ids);
END
$$;

-- Heads saved before 0007 kept a full copy of their state; their values are in the blobs.
SELECT set_config('cairn.maintenance', 'on', true);
UPDATE workflow_checkpoints SET state = NULL WHERE channels IS NOT NULL AND state IS NOT NULL;
