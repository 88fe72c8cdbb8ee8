package permissions

// The SQL resolve.go runs.
const (
	// cascadeTargetsSQL reads the tables that writes to the roots $1 (a json array of
	// {schema, name, del, upd, trunc, cols}) also write through foreign keys, up to 16 keys deep:
	// schema, name, whether it is by TRUNCATE … CASCADE, and the root it is reached from.
	cascadeTargetsSQL = `WITH RECURSIVE root AS (
	SELECT c.oid AS relid, r.schema || '.' || r.name AS name, r.del, r.upd, r.trunc, r.cols
	FROM jsonb_to_recordset($1::jsonb) AS r(schema text, name text, del bool, upd bool, trunc bool, cols text[])
	JOIN pg_namespace n ON n.nspname = r.schema
	JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = r.name
), reach(relid, trunc, root, depth) AS (
	SELECT con.conrelid, root.trunc, root.name, 1
	FROM root JOIN pg_constraint con ON con.confrelid = root.relid AND con.contype = 'f'
	WHERE root.trunc
		OR (root.del AND con.confdeltype IN ('c', 'n', 'd'))
		OR (root.upd AND con.confupdtype IN ('c', 'n', 'd') AND (root.cols IS NULL OR EXISTS (
			SELECT 1 FROM unnest(con.confkey) AS k(attnum)
			JOIN pg_attribute att ON att.attrelid = con.confrelid AND att.attnum = k.attnum
			WHERE att.attname = ANY (root.cols))))
	UNION
	SELECT con.conrelid, reach.trunc, reach.root, reach.depth + 1
	FROM reach JOIN pg_constraint con ON con.confrelid = reach.relid AND con.contype = 'f'
	WHERE reach.depth < 16 AND (reach.trunc OR con.confdeltype IN ('c', 'n', 'd') OR con.confupdtype IN ('c', 'n', 'd')))
SELECT DISTINCT n.nspname, c.relname, reach.trunc, reach.root
FROM reach JOIN pg_class c ON c.oid = reach.relid JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 4, 1, 2`

	// lookupNamesSQL reads, for each relation name in $1 ('r') and function name in $2 ('f'),
	// the schemas of the search path holding one of that name in search-path order, with the
	// current schema ('': none) on every row.
	lookupNamesSQL = `SELECT k, name, schemas, coalesce(current_schema()::text, '') FROM (
	SELECT 'r' AS k, t.name, ARRAY(
		SELECT p.nsp FROM unnest(current_schemas(true)::text[]) WITH ORDINALITY AS p(nsp, ord)
		WHERE EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = p.nsp AND c.relname = t.name)
		ORDER BY p.ord) AS schemas
	FROM unnest($1::text[]) AS t(name)
	UNION ALL
	SELECT 'f', f.name, ARRAY(
		SELECT p.nsp FROM unnest(current_schemas(true)::text[]) WITH ORDINALITY AS p(nsp, ord)
		WHERE EXISTS (SELECT 1 FROM pg_proc pr JOIN pg_namespace n ON n.oid = pr.pronamespace WHERE n.nspname = p.nsp AND pr.proname = f.name)
		ORDER BY p.ord)
	FROM unnest($2::text[]) AS f(name)) AS x`
)
