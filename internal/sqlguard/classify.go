package sqlguard

import (
	"strings"
	"unicode"

	pg_query "github.com/pganalyze/pg_query_go/v6"
	"google.golang.org/protobuf/proto"
)

type kind int

const (
	kindRead    kind = iota // SELECT, SHOW: query runs it, subject to what the tree holds
	kindWrite               // changes the database: execute runs it, query refuses it
	kindTx                  // transaction control: no tool runs it, each call is its own transaction
	kindSession             // session state: no tool runs it, it would outlive the call
	kindCopy                // COPY: no tool runs it
)

// class is what a statement is, from its top node alone.
type class struct {
	command string
	kind    kind
	does    string // kindWrite, kindSession: completes "`COMMAND` …"
	hint    string // kindSession: what to do instead
}

// classify names the top statement and sorts it into a kind. Anything not named here is DDL.
func classify(stmt proto.Message) class {
	switch n := stmt.(type) {
	case *pg_query.SelectStmt:
		if n.IntoClause != nil {
			return class{command: "SELECT INTO", kind: kindRead}
		}
		return class{command: "SELECT", kind: kindRead}
	case *pg_query.VariableShowStmt:
		return class{command: "SHOW", kind: kindRead}

	case *pg_query.InsertStmt:
		return class{"INSERT", kindWrite, "changes data", ""}
	case *pg_query.UpdateStmt:
		return class{"UPDATE", kindWrite, "changes data", ""}
	case *pg_query.DeleteStmt:
		return class{"DELETE", kindWrite, "changes data", ""}
	case *pg_query.MergeStmt:
		return class{"MERGE", kindWrite, "changes data", ""}
	case *pg_query.TruncateStmt:
		return class{"TRUNCATE", kindWrite, "deletes every row", ""}
	case *pg_query.DoStmt:
		return class{"DO", kindWrite, "runs a procedural block that can change anything", ""}
	case *pg_query.CallStmt:
		return class{"CALL", kindWrite, "runs a procedure that can change anything", ""}
	case *pg_query.NotifyStmt:
		return class{"NOTIFY", kindWrite, "sends a notification", ""}
	case *pg_query.LockStmt:
		return class{"LOCK TABLE", kindWrite, "takes table locks", ""}
	case *pg_query.ConstraintsSetStmt:
		return class{"SET CONSTRAINTS", kindWrite, "changes when the transaction checks constraints", ""}
	case *pg_query.VacuumStmt:
		if n.IsVacuumcmd {
			return class{"VACUUM", kindWrite, "is maintenance that writes", ""}
		}
		return class{"ANALYZE", kindWrite, "is maintenance that writes", ""}
	case *pg_query.ClusterStmt:
		return class{"CLUSTER", kindWrite, "is maintenance that writes", ""}
	case *pg_query.ReindexStmt:
		return class{"REINDEX", kindWrite, "is maintenance that writes", ""}
	case *pg_query.RefreshMatViewStmt:
		return class{"REFRESH MATERIALIZED VIEW", kindWrite, "is maintenance that writes", ""}
	case *pg_query.CheckPointStmt:
		return class{"CHECKPOINT", kindWrite, "is maintenance that writes", ""}
	case *pg_query.GrantStmt:
		return class{grantOrRevoke(n.IsGrant), kindWrite, "changes privileges", ""}
	case *pg_query.GrantRoleStmt:
		return class{grantOrRevoke(n.IsGrant), kindWrite, "changes role membership", ""}
	case *pg_query.AlterDefaultPrivilegesStmt:
		return class{"ALTER DEFAULT PRIVILEGES", kindWrite, "changes privileges", ""}
	case *pg_query.CreateRoleStmt:
		return class{"CREATE ROLE", kindWrite, "changes roles", ""}
	case *pg_query.AlterRoleStmt, *pg_query.AlterRoleSetStmt:
		return class{"ALTER ROLE", kindWrite, "changes roles", ""}
	case *pg_query.DropRoleStmt:
		return class{"DROP ROLE", kindWrite, "changes roles", ""}
	case *pg_query.AlterSystemStmt:
		return class{"ALTER SYSTEM", kindWrite, "changes the server configuration", ""}

	case *pg_query.TransactionStmt:
		return class{command: transactionCommand(n.Kind), kind: kindTx}
	case *pg_query.VariableSetStmt:
		return variableSet(n)
	case *pg_query.DiscardStmt:
		return class{"DISCARD", kindSession, "resets session state", "drop it; no session state carries from one call to the next"}
	case *pg_query.PrepareStmt:
		return class{"PREPARE", kindSession, preparedDoes, preparedHint}
	case *pg_query.ExecuteStmt:
		return class{"EXECUTE", kindSession, preparedDoes, preparedHint}
	case *pg_query.DeallocateStmt:
		return class{"DEALLOCATE", kindSession, preparedDoes, preparedHint}
	case *pg_query.DeclareCursorStmt:
		return class{"DECLARE CURSOR", kindSession, cursorDoes, cursorHint}
	case *pg_query.FetchStmt:
		if n.Ismove {
			return class{"MOVE", kindSession, cursorDoes, cursorHint}
		}
		return class{"FETCH", kindSession, cursorDoes, cursorHint}
	case *pg_query.ClosePortalStmt:
		return class{"CLOSE", kindSession, cursorDoes, cursorHint}
	case *pg_query.ListenStmt:
		return class{"LISTEN", kindSession, listenDoes, listenHint}
	case *pg_query.UnlistenStmt:
		return class{"UNLISTEN", kindSession, listenDoes, listenHint}
	case *pg_query.LoadStmt:
		return class{"LOAD", kindSession, "loads a shared library into the session", "drop it; ask the operator to preload the library"}

	case *pg_query.CopyStmt:
		return class{command: "COPY", kind: kindCopy}
	}
	return class{ddlCommand(stmt), kindWrite, "changes the schema", ""}
}

const (
	preparedDoes = "manages a prepared statement, which belongs to the session"
	preparedHint = "send the statement itself, with $1, $2, … for its parameters"
	cursorDoes   = "manages a cursor, which belongs to the session"
	cursorHint   = "send the SELECT itself; query already reads through a cursor and caps the rows"
	listenDoes   = "subscribes the session to notifications"
	listenHint   = "drop it; a tool call cannot wait for notifications"
)

func variableSet(n *pg_query.VariableSetStmt) class {
	const settingHint = "drop it; settings cannot carry from call to call — schema-qualify names instead of setting search_path"
	if n.Kind == pg_query.VariableSetKind_VAR_RESET || n.Kind == pg_query.VariableSetKind_VAR_RESET_ALL {
		return class{"RESET", kindSession, "changes a session setting", settingHint}
	}
	switch n.Name {
	case "TRANSACTION":
		return class{command: "SET TRANSACTION", kind: kindTx}
	case "SESSION CHARACTERISTICS":
		return class{command: "SET SESSION CHARACTERISTICS", kind: kindTx}
	case "role":
		return class{"SET ROLE", kindSession, "changes the session's role", "drop it; cairn runs every call as the role it connects with"}
	case "session_authorization":
		return class{"SET SESSION AUTHORIZATION", kindSession, "changes the session's role", "drop it; cairn runs every call as the role it connects with"}
	}
	return class{"SET", kindSession, "changes a session setting", settingHint}
}

func transactionCommand(k pg_query.TransactionStmtKind) string {
	switch k {
	case pg_query.TransactionStmtKind_TRANS_STMT_BEGIN:
		return "BEGIN"
	case pg_query.TransactionStmtKind_TRANS_STMT_START:
		return "START TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT:
		return "COMMIT"
	case pg_query.TransactionStmtKind_TRANS_STMT_SAVEPOINT:
		return "SAVEPOINT"
	case pg_query.TransactionStmtKind_TRANS_STMT_RELEASE:
		return "RELEASE"
	case pg_query.TransactionStmtKind_TRANS_STMT_PREPARE:
		return "PREPARE TRANSACTION"
	case pg_query.TransactionStmtKind_TRANS_STMT_COMMIT_PREPARED:
		return "COMMIT PREPARED"
	case pg_query.TransactionStmtKind_TRANS_STMT_ROLLBACK_PREPARED:
		return "ROLLBACK PREPARED"
	}
	return "ROLLBACK" // ROLLBACK and ROLLBACK TO SAVEPOINT
}

func grantOrRevoke(grant bool) string {
	if grant {
		return "GRANT"
	}
	return "REVOKE"
}

// ddlCommand names a DDL statement the way PostgreSQL's command tags do ("CREATE TABLE",
// "DROP INDEX", "ALTER EXTENSION"), falling back to the node's type name.
func ddlCommand(stmt proto.Message) string {
	switch n := stmt.(type) {
	case *pg_query.DropStmt:
		return "DROP " + objectName(n.RemoveType)
	case *pg_query.AlterTableStmt:
		return "ALTER " + objectName(n.Objtype)
	case *pg_query.RenameStmt:
		return "ALTER " + objectName(n.RenameType)
	case *pg_query.AlterObjectSchemaStmt:
		return "ALTER " + objectName(n.ObjectType)
	case *pg_query.AlterOwnerStmt:
		return "ALTER " + objectName(n.ObjectType)
	case *pg_query.AlterObjectDependsStmt:
		return "ALTER " + objectName(n.ObjectType)
	case *pg_query.DefineStmt:
		return "CREATE " + objectName(n.Kind)
	case *pg_query.CreateTableAsStmt:
		if n.Objtype == pg_query.ObjectType_OBJECT_MATVIEW {
			return "CREATE MATERIALIZED VIEW"
		}
		return "CREATE TABLE AS"
	case *pg_query.CreateFunctionStmt:
		if n.IsProcedure {
			return "CREATE PROCEDURE"
		}
		return "CREATE FUNCTION"
	case *pg_query.CreateStmt:
		return "CREATE TABLE"
	case *pg_query.IndexStmt:
		return "CREATE INDEX"
	case *pg_query.ViewStmt:
		return "CREATE VIEW"
	}
	name := string(stmt.ProtoReflect().Descriptor().Name())
	if c, ok := ddlNames[name]; ok {
		return c
	}
	return splitCamel(strings.TrimSuffix(name, "Stmt"))
}

// ddlNames covers the node types whose names do not spell their command.
var ddlNames = map[string]string{
	"CreateSeqStmt":                "CREATE SEQUENCE",
	"AlterSeqStmt":                 "ALTER SEQUENCE",
	"CreateTrigStmt":               "CREATE TRIGGER",
	"CreateEventTrigStmt":          "CREATE EVENT TRIGGER",
	"AlterEventTrigStmt":           "ALTER EVENT TRIGGER",
	"RuleStmt":                     "CREATE RULE",
	"CreatePLangStmt":              "CREATE LANGUAGE",
	"CreateFdwStmt":                "CREATE FOREIGN DATA WRAPPER",
	"AlterFdwStmt":                 "ALTER FOREIGN DATA WRAPPER",
	"CreateForeignServerStmt":      "CREATE SERVER",
	"AlterForeignServerStmt":       "ALTER SERVER",
	"CompositeTypeStmt":            "CREATE TYPE",
	"CreateEnumStmt":               "CREATE TYPE",
	"CreateRangeStmt":              "CREATE TYPE",
	"AlterEnumStmt":                "ALTER TYPE",
	"CreateAmStmt":                 "CREATE ACCESS METHOD",
	"CreateStatsStmt":              "CREATE STATISTICS",
	"AlterStatsStmt":               "ALTER STATISTICS",
	"CreateOpClassStmt":            "CREATE OPERATOR CLASS",
	"CreateOpFamilyStmt":           "CREATE OPERATOR FAMILY",
	"AlterOpFamilyStmt":            "ALTER OPERATOR FAMILY",
	"AlterTSDictionaryStmt":        "ALTER TEXT SEARCH DICTIONARY",
	"AlterTSConfigurationStmt":     "ALTER TEXT SEARCH CONFIGURATION",
	"CreatedbStmt":                 "CREATE DATABASE",
	"DropdbStmt":                   "DROP DATABASE",
	"AlterDatabaseSetStmt":         "ALTER DATABASE",
	"AlterDatabaseRefreshCollStmt": "ALTER DATABASE",
	"CreateTableSpaceStmt":         "CREATE TABLESPACE",
	"DropTableSpaceStmt":           "DROP TABLESPACE",
	"AlterTableSpaceOptionsStmt":   "ALTER TABLESPACE",
	"AlterTableMoveAllStmt":        "ALTER TABLE",
	"AlterExtensionContentsStmt":   "ALTER EXTENSION",
	"SecLabelStmt":                 "SECURITY LABEL",
	"CommentStmt":                  "COMMENT",
}

// objectName turns OBJECT_FOREIGN_TABLE into "FOREIGN TABLE".
func objectName(t pg_query.ObjectType) string {
	switch t {
	case pg_query.ObjectType_OBJECT_MATVIEW:
		return "MATERIALIZED VIEW"
	case pg_query.ObjectType_OBJECT_FDW:
		return "FOREIGN DATA WRAPPER"
	case pg_query.ObjectType_OBJECT_OPCLASS:
		return "OPERATOR CLASS"
	case pg_query.ObjectType_OBJECT_OPFAMILY:
		return "OPERATOR FAMILY"
	case pg_query.ObjectType_OBJECT_TSCONFIGURATION:
		return "TEXT SEARCH CONFIGURATION"
	case pg_query.ObjectType_OBJECT_TSDICTIONARY:
		return "TEXT SEARCH DICTIONARY"
	case pg_query.ObjectType_OBJECT_TSPARSER:
		return "TEXT SEARCH PARSER"
	case pg_query.ObjectType_OBJECT_TSTEMPLATE:
		return "TEXT SEARCH TEMPLATE"
	case pg_query.ObjectType_OBJECT_FOREIGN_SERVER:
		return "SERVER"
	case pg_query.ObjectType_OBJECT_STATISTIC_EXT:
		return "STATISTICS"
	case pg_query.ObjectType_OBJECT_TABCONSTRAINT:
		return "TABLE"
	}
	return strings.ReplaceAll(strings.TrimPrefix(t.String(), "OBJECT_"), "_", " ")
}

// splitCamel turns "CreateExtension" into "CREATE EXTENSION".
func splitCamel(s string) string {
	var b strings.Builder
	r := []rune(s)
	for i, c := range r {
		if i > 0 && unicode.IsUpper(c) && (unicode.IsLower(r[i-1]) || i+1 < len(r) && unicode.IsLower(r[i+1])) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(c))
	}
	return b.String()
}
