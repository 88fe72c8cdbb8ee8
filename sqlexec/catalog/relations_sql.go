package catalog

// The SQL relations.go runs.
const (
	// relationshipsSQL returns the resolved relation with its outgoing keys and, when $3, its
	// incoming keys, as json arrays of ForeignKey.
	//
	// Partitioning multiplies constraints: a key declared on a partitioned table is cloned onto
	// each partition, and a key referencing a partitioned table is cloned once per referenced
	// partition, on the referencing table itself. The clones of the second kind (whose parent
	// constraint sits on the same table) are internal bookkeeping and left out; a partition's
	// inherited key is a real key of that partition and is kept. Incoming keys are only the
	// top-level ones, so a partitioned referencing table shows once, not once per partition.
	relationshipsSQL = relCTE + `
SELECT rel.nspname, rel.relname,
	coalesce(json_agg(fk.j ORDER BY fk.conname) FILTER (WHERE fk.outgoing), '[]'),
	coalesce(json_agg(fk.j ORDER BY fk.src_schema, fk.src_table, fk.conname) FILTER (WHERE fk.incoming), '[]')
FROM rel
LEFT JOIN LATERAL (
	SELECT c.conname, n.nspname AS src_schema, cl.relname AS src_table, x.outgoing, x.incoming,
		json_build_object(
			'name', c.conname,
			'schema', n.nspname,
			'table', cl.relname,
			'columns', (
				SELECT json_agg(a.attname ORDER BY k.ord)
				FROM unnest(c.conkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum),
			'referenced_schema', rn.nspname,
			'referenced_table', rc.relname,
			'referenced_columns', (
				SELECT json_agg(a.attname ORDER BY k.ord)
				FROM unnest(c.confkey) WITH ORDINALITY AS k(attnum, ord)
				JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.attnum),
			'on_update', CASE c.confupdtype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
				WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END,
			'on_delete', CASE c.confdeltype WHEN 'a' THEN 'NO ACTION' WHEN 'r' THEN 'RESTRICT'
				WHEN 'c' THEN 'CASCADE' WHEN 'n' THEN 'SET NULL' WHEN 'd' THEN 'SET DEFAULT' END,
			'definition', pg_get_constraintdef(c.oid, true)
		) AS j
	FROM pg_constraint c
	JOIN pg_class cl ON cl.oid = c.conrelid
	JOIN pg_namespace n ON n.oid = cl.relnamespace
	JOIN pg_class rc ON rc.oid = c.confrelid
	JOIN pg_namespace rn ON rn.oid = rc.relnamespace
	LEFT JOIN pg_constraint parent ON parent.oid = c.conparentid
	CROSS JOIN LATERAL (SELECT
		c.conrelid = rel.oid AND (parent.oid IS NULL OR parent.conrelid <> c.conrelid) AS outgoing,
		$3::bool AND c.confrelid = rel.oid AND parent.oid IS NULL AS incoming
	) x
	WHERE c.contype = 'f' AND (c.conrelid = rel.oid OR c.confrelid = rel.oid) AND (x.outgoing OR x.incoming)
) fk ON true
GROUP BY rel.oid, rel.nspname, rel.relname`
)
