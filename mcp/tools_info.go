package mcp

import (
	"context"
	"fmt"
	"strings"

	sdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/cairn-mcp/cairn/internal/db"
	"github.com/cairn-mcp/cairn/migrations"
)

// NoArgs is the input of tools that take no arguments.
type NoArgs struct{}

// PoolStats describes the connection pool.
type PoolStats struct {
	Total    int32 `json:"total"`
	Idle     int32 `json:"idle"`
	Acquired int32 `json:"acquired"`
	Max      int32 `json:"max"`
	Min      int32 `json:"min"`
}

// ServerInfo is the result of server_info.
type ServerInfo struct {
	Name             string    `json:"name"`
	Version          string    `json:"version"`
	PostgresVersion  string    `json:"postgres_version"`
	PgvectorVersion  string    `json:"pgvector_version"` // "" when the extension is not installed
	MigrationVersion int       `json:"migration_version"`
	Transport        string    `json:"transport"`
	ReadOnly         bool      `json:"read_only"`
	StatementTimeout string    `json:"statement_timeout"`
	MaxRows          int       `json:"max_rows"`
	MaxResultBytes   int       `json:"max_result_bytes"`
	Toolsets         []string  `json:"toolsets"`
	Pool             PoolStats `json:"pool"`
}

// DBIdentity is the result of db_identity.
type DBIdentity struct {
	CurrentUser   string `json:"current_user"`
	SessionUser   string `json:"session_user"`
	Database      string `json:"database"`
	Host          string `json:"host"` // host name, IP, or "unix socket <dir>"
	Port          int    `json:"port"`
	ServerAddress string `json:"server_address,omitempty"` // inet_server_addr(); empty over a unix socket
	SSL           bool   `json:"ssl"`
	SSLVersion    string `json:"ssl_version,omitempty"`
	SSLCipher     string `json:"ssl_cipher,omitempty"`
	Superuser     bool   `json:"superuser"`
	Target        string `json:"target"`
}

func (s *Server) addInfoTools() {
	ro := readAnnotations()
	addTool(s, &sdk.Tool{
		Name:        "server_info",
		Title:       "cairn server info",
		Description: `cairn's version and settings, database versions, pool use.`,
		Annotations: ro,
	}, func(ctx context.Context, _ NoArgs) (ServerInfo, error) {
		info := ServerInfo{
			Name: "cairn", Version: s.opts.Version, Transport: s.cfg.Transport, ReadOnly: s.cfg.ReadOnly,
			StatementTimeout: s.cfg.StatementTimeout.String(), MaxRows: s.cfg.MaxRows, MaxResultBytes: s.cfg.MaxResultBytes, Toolsets: s.cfg.Toolsets,
		}
		err := s.pool.QueryRow(ctx, serverVersionsSQL).Scan(&info.PostgresVersion, &info.PgvectorVersion)
		if err != nil {
			return info, fmt.Errorf("read server versions: %w", err)
		}
		if info.MigrationVersion, err = migrations.Version(ctx, s.pool); err != nil {
			return info, err
		}
		st := s.pool.Stat()
		info.Pool = PoolStats{Total: st.TotalConns(), Idle: st.IdleConns(), Acquired: st.AcquiredConns(), Max: st.MaxConns(), Min: s.pool.Config().MinConns}
		return info, nil
	})
	addTool(s, &sdk.Tool{
		Name:        "db_identity",
		Title:       "Database identity",
		Description: `Who and where cairn is connected.`,
		Annotations: ro,
	}, func(ctx context.Context, _ NoArgs) (DBIdentity, error) {
		cc := s.pool.Config().ConnConfig
		id := DBIdentity{Host: cc.Host, Port: int(cc.Port), Target: db.Target(cc.Config)}
		if strings.HasPrefix(cc.Host, "/") {
			id.Host = "unix socket " + cc.Host
		}
		err := s.pool.QueryRow(ctx, connectionIdentitySQL).
			Scan(&id.CurrentUser, &id.SessionUser, &id.Database, &id.ServerAddress, &id.SSL, &id.SSLVersion, &id.SSLCipher, &id.Superuser)
		if err != nil {
			return id, fmt.Errorf("read connection identity: %w", err)
		}
		return id, nil
	})
}
