package catalog

// The SQL describe.go runs. Each statement starts with relCTE, which resolves $1 (schema) and
// $2 (table) to the relation rel.
const (
	// indexesJSON is a json array of the Index values of the relation rel.oid.
	indexesJSON = `(
	SELECT coalesce(json_agg(json_build_object(
		'name', ic.relname,
		'columns', (
			SELECT json_agg(CASE WHEN k.attnum = 0 THEN pg_get_indexdef(i.indexrelid, k.ord::int, true)
				ELSE (SELECT a.attname FROM pg_attribute a WHERE a.attrelid = i.indrelid AND a.attnum = k.attnum) END
				ORDER BY k.ord)
			FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			WHERE k.ord <= i.indnkeyatts),
		'include', (
			SELECT json_agg(a.attname ORDER BY k.ord)
			FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
			WHERE k.ord > i.indnkeyatts),
		'unique', i.indisunique,
		'primary', i.indisprimary,
		'method', am.amname,
		'predicate', pg_get_expr(i.indpred, i.indrelid, true),
		'definition', pg_get_indexdef(i.indexrelid),
		'valid', i.indisvalid
	) ORDER BY i.indisprimary DESC, ic.relname), '[]')
	FROM pg_index i
	JOIN pg_class ic ON ic.oid = i.indexrelid
	JOIN pg_am am ON am.oid = ic.relam
	WHERE i.indrelid = rel.oid
)`

	// describeSQL reads everything DescribeTable reports in one round trip; no row means the
	// relation does not resolve.
	describeSQL = relCTE + `
SELECT rel.nspname, rel.relname, rel.relkind,
	coalesce(obj_description(rel.oid, 'pg_class'), ''),
	CASE WHEN rel.relkind IN ('v', 'm') THEN pg_get_viewdef(rel.oid, true) ELSE '' END,
	CASE WHEN rel.relkind = 'p' THEN pg_get_partkeydef(rel.oid) ELSE '' END,
	coalesce((
		SELECT CASE WHEN pn.nspname = rel.nspname THEN p.relname::text ELSE pn.nspname || '.' || p.relname END
		FROM pg_inherits inh
		JOIN pg_class p ON p.oid = inh.inhparent
		JOIN pg_namespace pn ON pn.oid = p.relnamespace
		JOIN pg_class c ON c.oid = inh.inhrelid
		WHERE inh.inhrelid = rel.oid AND c.relispartition
	), ''),
	(
		SELECT coalesce(json_agg(json_build_object(
			'name', a.attname,
			'type', format_type(a.atttypid, a.atttypmod),
			'not_null', a.attnotnull,
			'default', pg_get_expr(d.adbin, d.adrelid, true),
			'identity', a.attidentity::text,
			'generated', a.attgenerated::text,
			'is_primary_key', coalesce(a.attnum = ANY (pk.conkey), false),
			'unique', EXISTS (
				SELECT 1 FROM pg_index u
				WHERE u.indrelid = a.attrelid AND u.indisunique AND NOT u.indisprimary AND u.indisvalid
				  AND u.indnkeyatts = 1 AND u.indkey[0] = a.attnum AND u.indpred IS NULL),
			'comment', col_description(a.attrelid, a.attnum),
			'type_oid', a.atttypid::int8,
			'type_name', t.typname,
			'type_schema', tn.nspname,
			'typmod', a.atttypmod
		) ORDER BY a.attnum), '[]')
		FROM pg_attribute a
		JOIN pg_type t ON t.oid = a.atttypid
		JOIN pg_namespace tn ON tn.oid = t.typnamespace
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		LEFT JOIN pg_constraint pk ON pk.conrelid = a.attrelid AND pk.contype = 'p'
		WHERE a.attrelid = rel.oid AND a.attnum > 0 AND NOT a.attisdropped
	),
	` + indexesJSON + `,
	(
		SELECT coalesce(json_agg(a.attname ORDER BY k.ord), '[]')
		FROM pg_constraint pk
		CROSS JOIN LATERAL unnest(pk.conkey) WITH ORDINALITY AS k(attnum, ord)
		JOIN pg_attribute a ON a.attrelid = pk.conrelid AND a.attnum = k.attnum
		WHERE pk.conrelid = rel.oid AND pk.contype = 'p'
	)
FROM rel`

	// indexesSQL reads the indexes of the resolved relation as a json array of Index; no row
	// means the relation does not resolve.
	indexesSQL = relCTE + `SELECT ` + indexesJSON + ` FROM rel`
)
