package catalog

// The SQL list.go runs.
const (
	// listSchemasSQL reads, by name, the schemas ListSchemas lists: name, owner and how many
	// relations the catalog reports each holds.
	listSchemasSQL = `
		SELECT n.nspname::text, pg_get_userbyid(n.nspowner)::text, count(c.oid)::int
		FROM pg_namespace n
		LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ` + relKinds + `
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname !~ '^pg_(toast|temp_)'
		GROUP BY n.oid, n.nspname, n.nspowner
		ORDER BY n.nspname`

	// listSQL returns the relations of schema $1 with what ListTables needs to choose between an
	// exact count and an estimate. It returns no row when the schema does not exist, and one row
	// with a NULL name when it exists but is empty.
	//
	// The estimate is the planner's: reltuples scaled by the relation's current size over its size
	// when last analyzed, summed over the leaf partitions of a partitioned table, and NULL when any
	// of them has never been analyzed (reltuples < 0).
	listSQL = `
WITH ns AS (SELECT oid, nspname::text AS nspname FROM pg_namespace WHERE nspname = $1::text)
SELECT ns.nspname, c.relname::text, c.relkind::text,
	coalesce(obj_description(c.oid, 'pg_class'), ''),
	coalesce((
		SELECT CASE WHEN p.relnamespace = ns.oid THEN p.relname::text ELSE pn.nspname || '.' || p.relname END
		FROM pg_inherits inh
		JOIN pg_class p ON p.oid = inh.inhparent
		JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE inh.inhrelid = c.oid AND c.relispartition
	), ''),
	st.estimate, coalesce(st.bytes, 0)::int8, coalesce(st.has_foreign, false),
	coalesce(has_table_privilege(c.oid, 'SELECT'), false),
	coalesce(c.relkind <> 'm' OR c.relispopulated, false)
FROM ns
LEFT JOIN pg_class c ON c.relnamespace = ns.oid AND c.relkind IN ` + relKinds + `
LEFT JOIN LATERAL (
	SELECT
		CASE WHEN bool_or(l.reltuples < 0) THEN NULL ELSE coalesce(sum(
			CASE WHEN l.relpages > 0
				THEN l.reltuples / l.relpages * (pg_relation_size(l.oid) / current_setting('block_size')::float8)
				ELSE l.reltuples END), 0) END AS estimate,
		sum(pg_relation_size(l.oid)) AS bytes,
		bool_or(l.relkind = 'f') AS has_foreign
	FROM pg_class l
	WHERE CASE WHEN c.relkind = 'p'
		THEN l.oid IN (SELECT relid FROM pg_partition_tree(c.oid) WHERE isleaf)
		ELSE l.oid = c.oid END
) st ON c.relkind IN ('r', 'm', 'p', 'f')
ORDER BY c.relname`

	// countRowsSQL (index, quoted relation) counts one relation's rows exactly, tagged with its
	// index; the relation is a catalog name quoted by the package, never the caller's text.
	countRowsSQL = `SELECT %d, count(*) FROM %s`

	// countRowsUnionSQL joins the countRowsSQL of a batch into one statement.
	countRowsUnionSQL = "\nUNION ALL "
)
