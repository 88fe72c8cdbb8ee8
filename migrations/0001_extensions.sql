-- pgvector when the server has it. The knowledge tools need it; everything else works without
-- it, so a server without pgvector (or a role that may not create extensions) still migrates.
DO $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'vector') THEN
    CREATE EXTENSION IF NOT EXISTS vector;
  ELSE
    RAISE NOTICE 'pgvector is not installed on this server; vector tools will say so until it is';
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE NOTICE 'no privilege to create the vector extension; ask an administrator to run CREATE EXTENSION vector';
END
$$;
