// Package config holds cairn's settings and turns the connection settings (DATABASE_URL, libpq's
// PG* variables, PGPASSWORD_FILE) into a pgx pool configuration.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Transports cairn serves MCP over.
const (
	TransportStdio = "stdio"
	TransportSSE   = "sse"
	TransportHTTP  = "http"
)

// Toolsets that can be chosen with --toolsets.
var Toolsets = []string{"generic", "checkpoint", "agents", "knowledge"}

// Config is everything `cairn serve` needs; zero values are replaced by the documented defaults
// in Normalize.
type Config struct {
	// DatabaseURL is a libpq connection string or URL. Empty means: use the PG* variables if any
	// is set, else cairn's embedded cluster.
	DatabaseURL string
	// PasswordFile names a file holding the password (PGPASSWORD_FILE): either the bare password
	// or a line PGPASSWORD=....
	PasswordFile string

	Transport string // stdio (default), sse or http
	Addr      string // listen address for sse/http; default 127.0.0.1:8080
	AuthToken string // bearer token required on the HTTP transports; needed off loopback

	// Authentication of the HTTP transports beyond AuthToken (see internal/auth): static tokens,
	// JWTs from an issuer, or both. Some authentication is needed to listen beyond loopback.
	AuthTokenRole      string        // role of AuthToken; default "admin"
	AuthTokensFile     string        // file of name:role:token lines
	AuthTokens         string        // name:role:token entries, comma-separated (CAIRN_AUTH_TOKENS)
	AuthIssuer         string        // JWT issuer URL; turns JWT authentication on
	AuthAudience       []string      // aud values accepted; default PublicURL's /mcp and /sse
	AuthJWKSURL        string        // the issuer's key set; default found by discovery
	AuthRoleClaim      string        // claim holding the role (dotted path allowed); default "role"
	AuthDefaultRole    string        // role of a JWT without the role claim; default none (refused)
	AuthClockSkew      time.Duration // tolerance on exp, nbf and iat; default 60s
	AuthRequiredScopes []string      // OAuth scopes every JWT must carry (403 otherwise)
	PublicURL          string        // URL clients reach cairn at; default each request's Host

	ReadOnly         bool
	StatementTimeout time.Duration // default 30s
	MaxRows          int           // default 1000
	MaxResultBytes   int           // default 4 MiB
	PoolMin          int           // default 2
	PoolMax          int           // default 10
	// SystemPoolMax is the size of the pool of cairn's own work that tool calls cannot take:
	// River (fetching jobs, electing a leader, its notifications), migrations, /readyz, the
	// LISTEN connection of workflow subscriptions. Default 4.
	SystemPoolMax int
	Toolsets      []string // default: all
	NoMigrate     bool

	// PermissionsFile names the YAML file of roles (internal/permissions); "" lets every caller
	// do everything.
	PermissionsFile string
	// Role is the role of callers that bring none (stdio, or a token without a role); it must
	// be one of the permissions file's roles.
	Role string
	// AuditEvents also records each audited (non-read-only) tool call as an event in the event
	// log, on the stream audit:<user>; the structured log line is written either way.
	AuditEvents bool

	// PoolTracer, when set, is the pools' tracer: internal/db.PoolWaits times their acquires
	// (pgxpool calls a tracer that is also a pgxpool.AcquireTracer).
	PoolTracer pgx.QueryTracer
}

// Defaults.
const (
	DefaultAddr             = "127.0.0.1:8080"
	DefaultStatementTimeout = 30 * time.Second
	DefaultMaxRows          = 1000
	DefaultMaxResultBytes   = 4 << 20 // sqlexec.DefaultMaxResultBytes says why
	DefaultPoolMin          = 2
	DefaultPoolMax          = 10
	DefaultSystemPoolMax    = 4
	DefaultAuthTokenRole    = "admin"
	DefaultAuthRoleClaim    = "role"
	DefaultAuthClockSkew    = 60 * time.Second
)

// Normalize fills defaults and checks the settings, returning an error that names the setting.
func (c *Config) Normalize() error {
	if c.Transport == "" {
		c.Transport = TransportStdio
	}
	switch c.Transport {
	case TransportStdio, TransportSSE, TransportHTTP:
	default:
		return fmt.Errorf("--transport %q: use stdio, sse or http", c.Transport)
	}
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.StatementTimeout == 0 {
		c.StatementTimeout = DefaultStatementTimeout
	}
	if c.StatementTimeout < 0 {
		return fmt.Errorf("--statement-timeout %s: must be positive (e.g. 30s, 2m)", c.StatementTimeout)
	}
	if c.MaxRows == 0 {
		c.MaxRows = DefaultMaxRows
	}
	if c.MaxRows < 0 {
		return fmt.Errorf("--max-rows %d: must be positive", c.MaxRows)
	}
	if c.MaxResultBytes == 0 {
		c.MaxResultBytes = DefaultMaxResultBytes
	}
	if c.MaxResultBytes < 1024 {
		return fmt.Errorf("--max-result-bytes %d: must be at least 1024 (default %d, 4 MiB)", c.MaxResultBytes, DefaultMaxResultBytes)
	}
	if c.PoolMin == 0 {
		c.PoolMin = DefaultPoolMin
	}
	if c.PoolMax == 0 {
		c.PoolMax = DefaultPoolMax
	}
	if c.PoolMin < 0 || c.PoolMax < 1 {
		return fmt.Errorf("--pool-min %d / --pool-max %d: need min >= 0 and max >= 1", c.PoolMin, c.PoolMax)
	}
	// A small --pool-max alone should not trip over the default minimum.
	c.PoolMin = min(c.PoolMin, c.PoolMax)
	if c.SystemPoolMax == 0 {
		c.SystemPoolMax = DefaultSystemPoolMax
	}
	if c.SystemPoolMax < 2 {
		return fmt.Errorf("--system-pool-max %d: needs at least 2 (River holds one connection to listen)", c.SystemPoolMax)
	}
	if len(c.Toolsets) == 0 {
		c.Toolsets = slices.Clone(Toolsets)
	}
	for _, ts := range c.Toolsets {
		if !slices.Contains(Toolsets, ts) {
			return fmt.Errorf("--toolsets: unknown toolset %q (available: %s)", ts, strings.Join(Toolsets, ", "))
		}
	}
	if c.Role != "" && c.PermissionsFile == "" {
		return fmt.Errorf("--role %q: roles come from a permissions file; set --permissions (CAIRN_PERMISSIONS_FILE) too, or drop --role", c.Role)
	}
	if err := c.normalizeAuth(); err != nil {
		return err
	}
	if c.Transport != TransportStdio && !c.AuthConfigured() {
		loopback, err := IsLoopbackAddr(c.Addr)
		if err != nil {
			return fmt.Errorf("--addr %q: %w", c.Addr, err)
		}
		if !loopback {
			return fmt.Errorf("--addr %s is not a loopback address: set --auth-token (CAIRN_AUTH_TOKEN), --auth-tokens-file or --auth-issuer so that only authenticated callers get in, or listen on 127.0.0.1", c.Addr)
		}
	}
	return nil
}

// AuthConfigured reports whether the HTTP transports authenticate callers: static tokens or an
// issuer of JWTs.
func (c *Config) AuthConfigured() bool {
	return c.AuthToken != "" || c.AuthTokensFile != "" || c.AuthTokens != "" || c.AuthIssuer != ""
}

// normalizeAuth fills the authentication defaults and checks that the settings fit together
// (internal/auth checks the rest when it builds the verifier).
func (c *Config) normalizeAuth() error {
	if c.AuthTokenRole == "" {
		c.AuthTokenRole = DefaultAuthTokenRole
	}
	if c.AuthRoleClaim == "" {
		c.AuthRoleClaim = DefaultAuthRoleClaim
	}
	if c.AuthClockSkew == 0 {
		c.AuthClockSkew = DefaultAuthClockSkew
	}
	if c.AuthClockSkew < 0 {
		return fmt.Errorf("--auth-clock-skew %s: must not be negative", c.AuthClockSkew)
	}
	if c.AuthIssuer == "" {
		if len(c.AuthAudience) > 0 || c.AuthJWKSURL != "" || c.AuthDefaultRole != "" || len(c.AuthRequiredScopes) > 0 {
			return errors.New("--auth-audience, --auth-jwks-url, --auth-default-role and --auth-required-scope are JWT settings: set --auth-issuer too")
		}
		return nil
	}
	if len(c.AuthAudience) == 0 && c.PublicURL == "" {
		return errors.New("--auth-issuer needs --auth-audience (the aud your issuer puts in the tokens it makes for cairn, e.g. https://cairn.example.com/mcp) or --public-url (then the audience is its /mcp)")
	}
	return nil
}

// IsLoopbackAddr reports whether a host:port listen address only accepts local connections.
// An empty host (":8080") listens everywhere, so it is not loopback.
func IsLoopbackAddr(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, errors.New("want host:port, e.g. 127.0.0.1:8080")
	}
	if host == "localhost" {
		return true, nil
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false, nil
	}
	return ip.IsLoopback(), nil
}

// HasToolset reports whether the toolset is enabled.
func (c *Config) HasToolset(name string) bool { return slices.Contains(c.Toolsets, name) }

// pgEnv are the libpq variables whose presence means "the user configured a database".
var pgEnv = []string{"PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGSERVICE", "PGPASSWORD", "PGPASSWORD_FILE"}

// DatabaseConfigured reports whether the environment or flags name a database; when not, cairn
// uses its embedded cluster.
func (c *Config) DatabaseConfigured() bool {
	if c.DatabaseURL != "" || c.PasswordFile != "" {
		return true
	}
	for _, k := range pgEnv {
		if os.Getenv(k) != "" {
			return true
		}
	}
	return false
}

// PoolConfig builds the pgx pool configuration: connection settings from DATABASE_URL or the PG*
// variables (pgx reads them as libpq does), the password from PasswordFile, and the session
// defaults every cairn connection runs with.
func (c *Config) PoolConfig() (*pgxpool.Config, error) {
	pc, err := pgxpool.ParseConfig(c.DatabaseURL)
	if err != nil {
		// pgx's message can echo the connection string; say which setting is wrong without it.
		return nil, fmt.Errorf("parse database connection settings (DATABASE_URL / PG* variables): %w", redact(err, c.DatabaseURL))
	}
	if c.PasswordFile != "" {
		pw, err := ReadPasswordFile(c.PasswordFile)
		if err != nil {
			return nil, err
		}
		pc.ConnConfig.Password = pw
	}
	pc.MinConns = int32(c.PoolMin)
	pc.MaxConns = int32(c.PoolMax)
	pc.MaxConnIdleTime = 5 * time.Minute
	pc.HealthCheckPeriod = 30 * time.Second
	// Describe-caching: one round trip per query like a prepared statement, but no named
	// statements on the server, so resetting a connection (DISCARD ALL) never breaks pgx's cache.
	pc.ConnConfig.DefaultQueryExecMode = pgx.QueryExecModeCacheDescribe
	if c.PoolTracer != nil {
		pc.ConnConfig.Tracer = c.PoolTracer
	}
	rp := pc.ConnConfig.RuntimeParams
	if rp["application_name"] == "" {
		rp["application_name"] = "cairn"
	}
	rp["statement_timeout"] = fmt.Sprintf("%d", c.StatementTimeout.Milliseconds())
	// Result values are read as text; ISO dates are what the JSON encoder turns into RFC 3339.
	rp["DateStyle"] = "ISO, YMD"
	rp["IntervalStyle"] = "postgres"
	return pc, nil
}

// SystemPoolConfig is PoolConfig for the system pool: SystemPoolMax connections, one kept open,
// and an application name that tells its sessions apart in pg_stat_activity.
func (c *Config) SystemPoolConfig() (*pgxpool.Config, error) {
	pc, err := c.PoolConfig()
	if err != nil {
		return nil, err
	}
	pc.MinConns = 1
	pc.MaxConns = int32(c.SystemPoolMax)
	if rp := pc.ConnConfig.RuntimeParams; rp["application_name"] == "cairn" {
		rp["application_name"] = "cairn (system)" // db.SystemApplicationName
	}
	return pc, nil
}

// ReadPasswordFile reads a password file: the bare password, or a PGPASSWORD=... line as in an
// env file. Trailing newlines are not part of the password.
func ReadPasswordFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read PGPASSWORD_FILE: %w", err)
	}
	text := string(b)
	for _, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		line = strings.TrimPrefix(line, "export ")
		if v, ok := strings.CutPrefix(line, "PGPASSWORD="); ok {
			return strings.Trim(v, `"'`), nil
		}
	}
	pw := strings.TrimRight(text, "\r\n")
	if pw == "" {
		return "", fmt.Errorf("PGPASSWORD_FILE %s is empty: put the password in it (alone, or as PGPASSWORD=...)", path)
	}
	return pw, nil
}

// redact removes a connection string (which may hold a password) from an error's text.
func redact(err error, secret string) error {
	if secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), secret, "<DATABASE_URL>"))
}
