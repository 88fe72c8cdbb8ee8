-- The event store every domain module appends to: one append-only table of events, a head row
-- per stream for optimistic concurrency, and the idempotency keys of appends.

CREATE TABLE event_streams (
	stream_id  text PRIMARY KEY CHECK (length(stream_id) BETWEEN 1 AND 200),
	version    bigint NOT NULL CHECK (version >= 0),
	updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE events (
	-- Global position: unique and increasing, but assigned before commit, so NOT commit order.
	-- Readers of "everything after X" use (tx_id, position) under the transaction watermark.
	position   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	stream_id  text NOT NULL REFERENCES event_streams (stream_id) ON DELETE CASCADE,
	version    bigint NOT NULL CHECK (version >= 1),
	type       text NOT NULL CHECK (length(type) BETWEEN 1 AND 200),
	data       jsonb NOT NULL DEFAULT '{}',
	metadata   jsonb NOT NULL DEFAULT '{}',
	tx_id      xid8 NOT NULL DEFAULT pg_current_xact_id(),
	created_at timestamptz NOT NULL DEFAULT now(),
	UNIQUE (stream_id, version)
);
CREATE INDEX events_tx_position ON events (tx_id, position);

CREATE TABLE event_idempotency (
	stream_id     text NOT NULL REFERENCES event_streams (stream_id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
	key           text NOT NULL CHECK (length(key) BETWEEN 1 AND 200),
	first_version bigint,
	last_version  bigint,
	positions     bigint[],
	created_at    timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (stream_id, key)
);

-- cairn_append_events appends events to a stream in the caller's transaction.
--   p_expected: -1 any version; 0 the stream must not exist yet; N the stream must be at N.
-- A version mismatch raises SQLSTATE CA001 with the current version in the DETAIL
-- ("current_version=N"), so no writer ever overwrites another's update unknowingly.
-- With an idempotency key, a second append with the same key (for the same stream) returns the
-- first append's result with duplicate = true and writes nothing; a concurrent one waits for the
-- first to commit.
CREATE FUNCTION cairn_append_events(
	p_stream text, p_expected bigint, p_types text[], p_data jsonb[], p_metadata jsonb[], p_key text DEFAULT NULL)
RETURNS TABLE (first_version bigint, last_version bigint, positions bigint[], duplicate boolean)
LANGUAGE plpgsql AS $$
DECLARE
	n       int := coalesce(array_length(p_types, 1), 0);
	newv    bigint;
	curv    bigint;
	pos     bigint[];
BEGIN
	IF n = 0 THEN
		RAISE EXCEPTION 'no events to append' USING ERRCODE = '22023';
	END IF;
	IF coalesce(array_length(p_data, 1), 0) <> n OR coalesce(array_length(p_metadata, 1), 0) <> n THEN
		RAISE EXCEPTION 'types, data and metadata must have the same length' USING ERRCODE = '22023';
	END IF;
	IF p_key IS NOT NULL THEN
		INSERT INTO event_idempotency (stream_id, key) VALUES (p_stream, p_key) ON CONFLICT DO NOTHING;
		IF NOT FOUND THEN
			RETURN QUERY SELECT i.first_version, i.last_version, i.positions, true
				FROM event_idempotency i WHERE i.stream_id = p_stream AND i.key = p_key;
			RETURN;
		END IF;
	END IF;

	IF p_expected = -1 THEN
		INSERT INTO event_streams AS s (stream_id, version) VALUES (p_stream, n)
		ON CONFLICT (stream_id) DO UPDATE SET version = s.version + n, updated_at = now()
		RETURNING s.version INTO newv;
	ELSIF p_expected = 0 THEN
		INSERT INTO event_streams (stream_id, version) VALUES (p_stream, n)
		ON CONFLICT (stream_id) DO NOTHING
		RETURNING version INTO newv;
	ELSE
		UPDATE event_streams SET version = version + n, updated_at = now()
		WHERE stream_id = p_stream AND version = p_expected
		RETURNING version INTO newv;
	END IF;
	IF newv IS NULL THEN
		SELECT version INTO curv FROM event_streams WHERE stream_id = p_stream;
		RAISE EXCEPTION 'stream % is at version %, not the expected %', p_stream, coalesce(curv, 0), p_expected
			USING ERRCODE = 'CA001', DETAIL = 'current_version=' || coalesce(curv, 0);
	END IF;

	WITH ins AS (
		INSERT INTO events (stream_id, version, type, data, metadata)
		SELECT p_stream, newv - n + e.ord, e.type, e.data, e.meta
		FROM unnest(p_types, p_data, p_metadata) WITH ORDINALITY AS e(type, data, meta, ord)
		RETURNING events.position, events.version
	)
	SELECT array_agg(ins.position ORDER BY ins.version) INTO pos FROM ins;

	IF p_key IS NOT NULL THEN
		UPDATE event_idempotency SET first_version = newv - n + 1, last_version = newv, positions = pos
		WHERE stream_id = p_stream AND key = p_key;
	END IF;
	-- Tells the capture triggers (0003) that this transaction's writes to the stream's
	-- projections are already described by events.
	PERFORM set_config('cairn.appended', p_stream, true);
	-- Delivered at commit, to every process listening: followers wake instead of polling.
	PERFORM pg_notify('cairn_events', p_stream);
	RETURN QUERY SELECT newv - n + 1, newv, pos, false;
END
$$;
