package backup

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// Conn is how pg_dump and pg_restore reach a database: a libpq connection string that holds no
// password (it goes on their command line, which other users can read in ps), and the password,
// which they get in PGPASSWORD.
type Conn struct {
	settings map[string]string
	password string
}

// passThrough are the libpq keywords of the original connection string that cairn hands on as
// written. pgx keeps no trace of some (file paths of certificates), and turns others into
// settings that cannot be turned back without loss (sslmode=verify-ca and require both become a
// TLS config), so the original is the only faithful source. Keywords libpq does not know (pgx
// accepts search_path, pool_max_conns, ...) are left out: libpq would refuse them, and pg_dump
// and pg_restore set their own search_path anyway. sslpassword is a secret and has no
// environment variable, so it is left out too.
var passThrough = []string{
	"application_name", "channel_binding", "connect_timeout", "gssencmode", "gsslib", "keepalives",
	"keepalives_count", "keepalives_idle", "keepalives_interval", "krbsrvname", "load_balance_hosts",
	"options", "passfile", "require_auth", "requirepeer", "service", "ssl_max_protocol_version",
	"ssl_min_protocol_version", "sslcert", "sslcertmode", "sslcompression", "sslcrl", "sslcrldir",
	"sslkey", "sslmode", "sslnegotiation", "sslrootcert", "sslsni", "target_session_attrs",
	"tcp_user_timeout",
}

// NewConn builds the client programs' connection from the connection string cairn was given
// (DATABASE_URL, --into, the embedded cluster's; "" when it came from PG* variables) and the
// configuration pgx resolved from it. Host, port, user and database come from pgx, which has
// already applied the PG* variables, the service file and the password file; the child inherits
// the environment too, so what neither names falls back the same way for both.
func NewConn(original string, cfg *pgconn.Config) (Conn, error) {
	orig, err := parseConnString(original)
	if err != nil {
		return Conn{}, fmt.Errorf("read the connection string for pg_dump/pg_restore: %w", err)
	}
	s := make(map[string]string)
	for _, k := range passThrough {
		if v, ok := orig[k]; ok {
			s[k] = v
		}
	}
	type hostPort struct{ host, port string }
	targets := []hostPort{{cfg.Host, strconv.Itoa(int(cfg.Port))}}
	for _, fb := range cfg.Fallbacks {
		// Fallbacks repeat a host for sslmode=prefer/allow; only new hosts make a list.
		if hp := (hostPort{fb.Host, strconv.Itoa(int(fb.Port))}); !slices.Contains(targets, hp) {
			targets = append(targets, hp)
		}
	}
	var hosts, ports []string
	for _, hp := range targets {
		hosts, ports = append(hosts, hp.host), append(ports, hp.port)
	}
	s["host"] = strings.Join(hosts, ",")
	s["port"] = strings.Join(ports, ",")
	s["user"] = cfg.User
	s["dbname"] = cfg.Database
	if _, ok := s["application_name"]; !ok {
		s["application_name"] = "cairn"
	}
	return Conn{settings: s, password: cfg.Password}, nil
}

// WithDatabase returns the connection pointed at another database of the same server.
func (c Conn) WithDatabase(name string) Conn {
	s := make(map[string]string, len(c.settings))
	for k, v := range c.settings {
		s[k] = v
	}
	s["dbname"] = name
	return Conn{settings: s, password: c.password}
}

// Database is the database the connection goes to.
func (c Conn) Database() string { return c.settings["dbname"] }

// String is the libpq keyword/value connection string, without the password.
func (c Conn) String() string {
	keys := make([]string, 0, len(c.settings))
	for k := range c.settings {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + quoteConnValue(c.settings[k]))
	}
	return b.String()
}

// env is the environment of a child that uses the connection: this process's, with PGPASSWORD
// replaced by the connection's password.
func (c Conn) env() []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PGPASSWORD=") })
	if c.password != "" {
		env = append(env, "PGPASSWORD="+c.password)
	}
	return env
}

// quoteConnValue quotes a libpq keyword/value value; always quoting keeps it simple and safe.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// parseConnString reads the keywords of a libpq connection string, URL or keyword/value. Of a
// URL only the query parameters matter here: host, port, user, password and database come from
// pgx's resolved configuration.
func parseConnString(s string) (map[string]string, error) {
	if strings.HasPrefix(s, "postgres://") || strings.HasPrefix(s, "postgresql://") {
		return parseURLParams(s)
	}
	return parseKeywordValue(s)
}

func parseURLParams(s string) (map[string]string, error) {
	out := make(map[string]string)
	_, query, ok := strings.Cut(s, "?")
	if !ok {
		return out, nil
	}
	for kv := range strings.SplitSeq(query, "&") {
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, fmt.Errorf("URL parameter %q has no value", k)
		}
		var err error
		if k, err = url.PathUnescape(k); err != nil {
			return nil, fmt.Errorf("URL parameter: %w", err)
		}
		if v, err = url.PathUnescape(v); err != nil {
			return nil, fmt.Errorf("URL parameter %s: %w", k, err)
		}
		if k == "ssl" && v == "true" { // the JDBC spelling libpq also accepts
			k, v = "sslmode", "require"
		}
		out[k] = v
	}
	return out, nil
}

// parseKeywordValue parses "key=value key='quoted \' value'" as libpq does.
func parseKeywordValue(s string) (map[string]string, error) {
	out := make(map[string]string)
	const space = " \t\n\r\v\f"
	s = strings.TrimLeft(s, space)
	for s != "" {
		eq := strings.IndexByte(s, '=')
		if eq < 0 {
			return nil, errors.New(`missing "=" after a keyword`)
		}
		key := strings.TrimRight(s[:eq], space)
		if key == "" || strings.ContainsAny(key, space) {
			return nil, fmt.Errorf("bad keyword %q", key)
		}
		s = strings.TrimLeft(s[eq+1:], space)
		var val strings.Builder
		if strings.HasPrefix(s, "'") {
			s = s[1:]
			closed := false
			for len(s) > 0 && !closed {
				c := s[0]
				s = s[1:]
				switch {
				case c == '\\' && len(s) > 0:
					val.WriteByte(s[0])
					s = s[1:]
				case c == '\'':
					closed = true
				default:
					val.WriteByte(c)
				}
			}
			if !closed {
				return nil, fmt.Errorf("unterminated quoted value of %s", key)
			}
		} else {
			for len(s) > 0 && !strings.ContainsRune(space, rune(s[0])) {
				c := s[0]
				s = s[1:]
				if c == '\\' && len(s) > 0 {
					c, s = s[0], s[1:]
				}
				val.WriteByte(c)
			}
		}
		out[key] = val.String()
		s = strings.TrimLeft(s, space)
	}
	return out, nil
}
