package pgjson

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// newTestDB connects to a fresh database on the server named by DATABASE_URL or the PG*
// variables, dropped when the test ends. extra is appended to CREATE DATABASE (an encoding, say).
// No server is a failure, never a skip: these tests are the contract's only check.
func newTestDB(t *testing.T, extra string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := pgx.Connect(ctx, os.Getenv("DATABASE_URL"))
	if err != nil {
		t.Fatalf("no PostgreSQL for tests (%v): set DATABASE_URL or PGHOST/PGUSER to a server with pgvector", err)
	}
	defer admin.Close(ctx)
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	name := "pgjson_test_" + hex.EncodeToString(rnd[:])
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+name+" "+extra); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	cfg := admin.Config().Copy()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Errorf("drop %s: %v", name, err)
			return
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("drop %s: %v", name, err)
		}
	})
	dbCfg := admin.Config().Copy()
	dbCfg.Database = name
	conn, err := pgx.ConnectConfig(ctx, dbCfg)
	if err != nil {
		t.Fatalf("connect to %s: %v", name, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
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
