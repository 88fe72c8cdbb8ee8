package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"defaults", Config{}, ""},
		{"http on loopback", Config{Transport: "http", Addr: "127.0.0.1:9000"}, ""},
		{"http on localhost", Config{Transport: "sse", Addr: "localhost:9000"}, ""},
		{"http on ipv6 loopback", Config{Transport: "http", Addr: "[::1]:9000"}, ""},
		{"http everywhere without token", Config{Transport: "http", Addr: ":9000"}, "--auth-token"},
		{"http on public ip without token", Config{Transport: "http", Addr: "0.0.0.0:9000"}, "--auth-token"},
		{"http everywhere with token", Config{Transport: "http", Addr: "0.0.0.0:9000", AuthToken: "t"}, ""},
		{"http everywhere with a tokens file", Config{Transport: "http", Addr: "0.0.0.0:9000", AuthTokensFile: "/run/secrets/tokens"}, ""},
		{"http everywhere with CAIRN_AUTH_TOKENS", Config{Transport: "http", Addr: "0.0.0.0:9000", AuthTokens: "ci:reader:t"}, ""},
		{"http everywhere with an issuer", Config{Transport: "http", Addr: "0.0.0.0:9000", AuthIssuer: "https://idp.example", AuthAudience: []string{"cairn"}}, ""},
		{"issuer with public url", Config{AuthIssuer: "https://idp.example", PublicURL: "https://cairn.example"}, ""},
		{"issuer without audience", Config{AuthIssuer: "https://idp.example"}, "--auth-audience"},
		{"audience without issuer", Config{AuthAudience: []string{"cairn"}}, "--auth-issuer"},
		{"default role without issuer", Config{AuthDefaultRole: "reader"}, "--auth-issuer"},
		{"negative clock skew", Config{AuthClockSkew: -time.Second}, "--auth-clock-skew"},
		{"stdio ignores addr", Config{Transport: "stdio", Addr: "0.0.0.0:1"}, ""},
		{"bad transport", Config{Transport: "grpc"}, "stdio, sse or http"},
		{"bad addr", Config{Transport: "http", Addr: "nohostport"}, "host:port"},
		{"negative timeout", Config{StatementTimeout: -time.Second}, "statement-timeout"},
		{"pool max zero after default", Config{PoolMax: -1}, "pool"},
		{"unknown toolset", Config{Toolsets: []string{"everything"}}, "unknown toolset"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			err := c.Normalize()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if c.MaxRows != DefaultMaxRows || c.StatementTimeout == 0 || c.PoolMax == 0 || len(c.Toolsets) == 0 {
					t.Errorf("defaults not filled: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want one mentioning %q", err, tc.wantErr)
			}
		})
	}
}

func TestReadPasswordFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct{ content, want string }{
		{"s3cret\n", "s3cret"},
		{"PGPASSWORD=from-env-file\nOTHER=x\n", "from-env-file"},
		{"export PGPASSWORD='quoted'\n", "quoted"},
		{"with spaces inside \r\n", "with spaces inside "},
	}
	for i, tc := range tests {
		p := filepath.Join(dir, "pw"+string(rune('a'+i)))
		os.WriteFile(p, []byte(tc.content), 0o600)
		got, err := ReadPasswordFile(p)
		if err != nil || got != tc.want {
			t.Errorf("%q: got %q, %v; want %q", tc.content, got, err, tc.want)
		}
	}
	if _, err := ReadPasswordFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file should fail")
	}
	os.WriteFile(filepath.Join(dir, "empty"), nil, 0o600)
	if _, err := ReadPasswordFile(filepath.Join(dir, "empty")); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
}

func TestPoolConfigSessionDefaults(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("PGPASSWORD=abc\n"), 0o600)
	c := Config{DatabaseURL: "postgres://u@h:5433/d", PasswordFile: pw, StatementTimeout: 1500 * time.Millisecond}
	if err := c.Normalize(); err != nil {
		t.Fatal(err)
	}
	pc, err := c.PoolConfig()
	if err != nil {
		t.Fatal(err)
	}
	if pc.ConnConfig.Password != "abc" || pc.ConnConfig.RuntimeParams["statement_timeout"] != "1500" || pc.MaxConns != 10 || pc.MinConns != 2 {
		t.Errorf("pool config: pw=%q params=%v max=%d min=%d", pc.ConnConfig.Password, pc.ConnConfig.RuntimeParams, pc.MaxConns, pc.MinConns)
	}
}
