package pgjson

import (
	"context"
	"testing"

	"github.com/cairn-mcp/cairn/internal/testdb"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// newTestDB connects to a fresh database on the test server, dropped when the test ends. extra
// is appended to CREATE DATABASE (an encoding, say).
func newTestDB(t *testing.T, extra string) *pgx.Conn {
	t.Helper()
	return testdb.Empty(t, "pgjson_test_", extra)
}

// newVectorDB is newTestDB with pgvector installed and an encoder that knows its OIDs.
func newVectorDB(t *testing.T) (*pgx.Conn, *Encoder) {
	t.Helper()
	conn := newTestDB(t, "")
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "CREATE EXTENSION vector"); err != nil {
		t.Fatalf("create extension vector: %v (install pgvector on the test server)", err)
	}
	var vec, half, sparse uint32
	err := conn.QueryRow(ctx, `SELECT 'vector'::regtype::oid, 'halfvec'::regtype::oid, 'sparsevec'::regtype::oid`).Scan(&vec, &half, &sparse)
	if err != nil {
		t.Fatalf("vector oids: %v", err)
	}
	enc := NewEncoder(pgtype.NewMap())
	enc.SetExtensionOIDs(vec, half, sparse)
	return conn, enc
}

// exec runs sql the way cairn does (extended protocol, text parameters with OID 0, text
// results) and returns the first column's type and the first row's raw value.
func exec(t *testing.T, pg *pgconn.PgConn, sql string, params ...[]byte) (uint32, []byte, error) {
	t.Helper()
	rr := pg.ExecParams(context.Background(), sql, params, nil, nil, nil)
	var oid uint32
	var val []byte
	if fds := rr.FieldDescriptions(); len(fds) > 0 {
		oid = fds[0].DataTypeOID
	}
	if rr.NextRow() {
		if v := rr.Values()[0]; v != nil {
			val = append([]byte{}, v...)
		}
	}
	_, err := rr.Close()
	return oid, val, err
}

func mustExec(t *testing.T, pg *pgconn.PgConn, sql string) {
	t.Helper()
	if err := pg.Exec(context.Background(), sql).Close(); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}
