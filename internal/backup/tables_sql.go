package backup

// The SQL tables.go runs (and noStatementTimeoutSQL, backup_sql.go).
const (
	// tableNamesSQL reads, by name, the tables of schema $1 whose rows pg_dump dumps: ordinary
	// and partitioned tables that no extension owns.
	tableNamesSQL = `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p')
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY c.relname`

	// countTableSQL (table, schema-qualified and quoted from tableNamesSQL's names) counts a
	// table's rows.
	countTableSQL = `SELECT count(*) FROM %s`

	// schemaObjectsSQL reads what schema $1 holds that no extension owns, as DROP names it (kind
	// and quoted identity): relations, tables first, then routines with their argument types,
	// then standalone types and domains. The %I and %s are format()'s, in the statement.
	schemaObjectsSQL = `
		WITH ns AS (SELECT oid, nspname FROM pg_namespace WHERE nspname = $1),
		owned AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
		SELECT kind, ident FROM (
			SELECT CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'TABLE' WHEN 'f' THEN 'FOREIGN TABLE'
				WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' ELSE 'TYPE' END AS kind,
				format('%I.%I', ns.nspname, c.relname) AS ident,
				CASE WHEN c.relkind IN ('r', 'p', 'f') THEN 0 ELSE 1 END AS ord
			FROM pg_class c JOIN ns ON ns.oid = c.relnamespace
			WHERE c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'c')
			  AND (c.oid, 'pg_class'::regclass) NOT IN (SELECT objid, classid FROM owned)
			UNION ALL
			SELECT 'ROUTINE', format('%I.%I(%s)', ns.nspname, p.proname, pg_get_function_identity_arguments(p.oid)), 2
			FROM pg_proc p JOIN ns ON ns.oid = p.pronamespace
			WHERE (p.oid, 'pg_proc'::regclass) NOT IN (SELECT objid, classid FROM owned)
			UNION ALL
			SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, format('%I.%I', ns.nspname, t.typname), 3
			FROM pg_type t JOIN ns ON ns.oid = t.typnamespace
			WHERE t.typtype IN ('e', 'r', 'd')
			  AND (t.oid, 'pg_type'::regclass) NOT IN (SELECT objid, classid FROM owned)
		) o ORDER BY ord, ident`
)
