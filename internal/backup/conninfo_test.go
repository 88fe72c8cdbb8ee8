package backup

import (
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestNewConn(t *testing.T) {
	tests := []struct {
		name     string
		original string
		password string
		want     map[string]string // settings that must be there
		absent   []string          // keywords that must not
	}{
		{
			name:     "URL with a password and pgx-only parameters",
			original: "postgres://cairn:s3cr%40t@db.example:5433/agents?sslmode=disable&search_path=cairn&pool_max_conns=4&connect_timeout=7",
			password: "s3cr@t",
			want:     map[string]string{"host": "db.example", "port": "5433", "user": "cairn", "dbname": "agents", "sslmode": "disable", "connect_timeout": "7"},
			absent:   []string{"password", "search_path", "pool_max_conns"},
		},
		{
			name:     "keyword/value with quoting",
			original: `host=/tmp/pg\ sock port=5432 user='o\'brien' dbname='my db' password='hunter 2' sslmode=disable application_name='nightly backup' target_session_attrs=any`,
			password: "hunter 2",
			want: map[string]string{"host": "/tmp/pg sock", "user": "o'brien", "dbname": "my db", "sslmode": "disable",
				"application_name": "nightly backup", "target_session_attrs": "any"},
			absent: []string{"password"},
		},
		{
			name:     "several hosts",
			original: "postgresql://u@h1:5432,h2:5433/d?sslmode=disable&target_session_attrs=read-write",
			want:     map[string]string{"host": "h1,h2", "port": "5432,5433", "user": "u", "dbname": "d", "target_session_attrs": "read-write"},
		},
		{
			name:     "the JDBC ssl=true alias",
			original: "postgres://u@h/d?ssl=true",
			want:     map[string]string{"sslmode": "require", "application_name": "cairn"},
			absent:   []string{"ssl"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := pgconn.ParseConfig(tc.original)
			if err != nil {
				t.Fatal(err)
			}
			c, err := NewConn(tc.original, cfg)
			if err != nil {
				t.Fatal(err)
			}
			s := c.String()
			if tc.password != "" && strings.Contains(s, tc.password) {
				t.Errorf("the password is in the connection string: %s", s)
			}
			got, err := parseKeywordValue(s)
			if err != nil {
				t.Fatalf("String() does not parse back: %v (%s)", err, s)
			}
			if !maps.Equal(got, c.settings) {
				t.Errorf("String() round trip: %v, want %v", got, c.settings)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q (in %s)", k, got[k], v, s)
				}
			}
			for _, k := range tc.absent {
				if _, ok := got[k]; ok {
					t.Errorf("%s should be left out: %s", k, s)
				}
			}
			if tc.password != "" && !slices.Contains(c.env(), "PGPASSWORD="+tc.password) {
				t.Errorf("the child's environment lacks PGPASSWORD")
			}
		})
	}
}

func TestConnEnvReplacesPassword(t *testing.T) {
	t.Setenv("PGPASSWORD", "from-the-environment")
	c := Conn{settings: map[string]string{"dbname": "d"}, password: "resolved"}
	var pw []string
	for _, kv := range c.env() {
		if strings.HasPrefix(kv, "PGPASSWORD=") {
			pw = append(pw, kv)
		}
	}
	if !slices.Equal(pw, []string{"PGPASSWORD=resolved"}) {
		t.Errorf("PGPASSWORD entries %v, want only the resolved one", pw)
	}
	other := c.WithDatabase("scratch")
	if other.Database() != "scratch" || c.Database() != "d" || other.password != "resolved" {
		t.Errorf("WithDatabase: %q (original now %q)", other.Database(), c.Database())
	}
}

func TestParseKeywordValueErrors(t *testing.T) {
	for _, s := range []string{"host", "host='unterminated", "=x", "ho st=x"} {
		if got, err := parseKeywordValue(s); err == nil {
			t.Errorf("parseKeywordValue(%q) = %v, want an error", s, got)
		}
	}
}
