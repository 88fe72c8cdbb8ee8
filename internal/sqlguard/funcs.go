package sqlguard

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// funcRule says why calls of a function are refused.
type funcRule struct {
	does string // completes "`name` …", e.g. "changes a sequence"
	hint string
	// everywhere: refused by execute and transaction too, because the effect outlives the call
	// on a pooled connection or reaches outside the database; otherwise only query refuses it.
	everywhere bool
	// admin: it administers the server or reaches other sessions, so with a permissions file a
	// role may call it only if its functions list names it (FuncRef.Restricted).
	admin bool
}

// funcRules lists the functions whose calls are refused, by unqualified lower-case name, whatever
// schema a call names (dblink usually lives in public). A trailing * makes a prefix.
//
// This is the first wall, there to give a clear error: query also runs in a READ ONLY
// transaction that is rolled back, which stops writes to tables but not signals, sequences,
// notifications, configuration reloads or remote connections. Functions the parser cannot see
// (called from a view, a trigger or a user function) are left to that second wall and to the
// role's privileges.
var funcRules = []struct {
	funcRule
	names []string
}{
	{funcRule{"changes a session setting", "drop it; calls share pooled connections, so a setting would leak into later calls", true, false},
		[]string{"set_config"}},
	{funcRule{"takes or releases an advisory lock", "advisory locks belong to the pooled session, not to your call; to serialize work, lock a row with SELECT … FOR UPDATE in the transaction tool", true, false},
		[]string{"pg_advisory_*", "pg_try_advisory_*"}},
	{funcRule{"opens a named dblink connection that outlives the call", "pass the connection string to dblink() or dblink_exec() instead, with the execute tool", true, true},
		[]string{"dblink_connect*"}},
	{funcRule{"reaches the database server's filesystem", "cairn gives no access to the server's files; read and write data through tables", true, true},
		[]string{"pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write", "pg_file_unlink", "pg_file_rename", "lo_import", "lo_export"}},

	{funcRule{"changes a sequence", "use the execute tool", false, false},
		[]string{"nextval"}},
	{funcRule{"sets a sequence's value", "use the execute tool", false, true},
		[]string{"setval"}},
	{funcRule{"sends a notification", "use NOTIFY or pg_notify with the execute tool", false, false},
		[]string{"pg_notify"}},
	{funcRule{"creates, opens, changes or deletes a large object", "use the execute tool", false, true},
		[]string{"lo_create", "lo_creat", "lo_unlink", "lo_put", "lo_from_bytea", "lo_open", "lowrite", "lo_truncate", "lo_truncate64"}},
	{funcRule{"signals another server process", "use the execute tool", false, true},
		[]string{"pg_terminate_backend", "pg_cancel_backend"}},
	{funcRule{"controls the database server", "use the execute tool", false, true},
		[]string{"pg_reload_conf", "pg_rotate_logfile", "pg_log_backend_memory_contexts", "pg_switch_wal", "pg_create_restore_point",
			"pg_promote", "pg_backup_start", "pg_backup_stop", "pg_wal_replay_pause", "pg_wal_replay_resume"}},
	{funcRule{"resets statistics", "use the execute tool", false, true},
		[]string{"pg_stat_reset*", "pg_stat_statements_reset"}},
	{funcRule{"runs SQL in another database, where it may write", "use the execute tool", false, true},
		[]string{"dblink*"}},
	{funcRule{"changes replication state", "use the execute tool", false, true},
		[]string{"pg_logical_emit_message", "pg_replication_origin_*", "pg_create_physical_replication_slot", "pg_create_logical_replication_slot",
			"pg_copy_physical_replication_slot", "pg_copy_logical_replication_slot", "pg_drop_replication_slot", "pg_replication_slot_advance",
			"pg_logical_slot_get_changes", "pg_logical_slot_get_binary_changes"}},
	{funcRule{"assigns a transaction ID, which a read-only transaction cannot do", "use the execute tool", false, false},
		[]string{"txid_current", "pg_current_xact_id"}},
	{funcRule{"exports a snapshot for other sessions", "use the execute tool", false, false},
		[]string{"pg_export_snapshot"}},
}

type prefixRule struct {
	prefix string
	rule   *funcRule
}

// exactFuncRules and prefixFuncRules index funcRules; prefixes run longest first so that
// dblink_connect* wins over dblink*. Both are built once and never written again.
var exactFuncRules, prefixFuncRules = indexFuncRules()

func indexFuncRules() (map[string]*funcRule, []prefixRule) {
	exact := map[string]*funcRule{}
	var prefixes []prefixRule
	for i := range funcRules {
		r := &funcRules[i].funcRule
		for _, n := range funcRules[i].names {
			if p, ok := strings.CutSuffix(n, "*"); ok {
				prefixes = append(prefixes, prefixRule{p, r})
			} else {
				exact[n] = r
			}
		}
	}
	slices.SortStableFunc(prefixes, func(a, b prefixRule) int { return cmp.Compare(len(b.prefix), len(a.prefix)) })
	return exact, prefixes
}

// deniedFunction returns the first of functions (as in Statement.Functions) that a rule refuses;
// with everywhere set, only rules that execute enforces too count.
func deniedFunction(functions []string, everywhere bool) (string, *funcRule) {
	for _, f := range functions {
		if r := funcRuleFor(f[strings.LastIndexByte(f, '.')+1:]); r != nil && (r.everywhere || !everywhere) {
			return f, r
		}
	}
	return "", nil
}

func funcRuleFor(name string) *funcRule {
	if r := exactFuncRules[name]; r != nil {
		return r
	}
	for _, p := range prefixFuncRules {
		if strings.HasPrefix(name, p.prefix) {
			return p.rule
		}
	}
	return nil
}

// ReservedChannels are the prefixes of the LISTEN/NOTIFY channels cairn and River listen on
// (cairn_events wakes workflow subscribers; River coordinates its clients): a notification
// there would be taken for one of theirs.
var ReservedChannels = []string{"cairn", "river"}

// notifyRestriction says why a notification on channel needs an explicit permission: the
// channel is one of cairn's or River's, or it is not known until run time (known false).
func notifyRestriction(channel string, known bool) string {
	if !known {
		return "sends a notification on a channel named at run time, which may be one cairn or River listens on"
	}
	for _, p := range ReservedChannels {
		if len(channel) >= len(p) && strings.EqualFold(channel[:len(p)], p) {
			return fmt.Sprintf("sends a notification on %q, a channel cairn or River listens on, where it would be taken for one of theirs", channel)
		}
	}
	return ""
}

// stringArg returns the first argument of a call if it is a string literal (possibly cast, as
// in nextval('s'::regclass)).
func stringArg(args []*pg_query.Node) (string, bool) {
	if len(args) == 0 {
		return "", false
	}
	n := args[0]
	if tc := n.GetTypeCast(); tc != nil {
		n = tc.Arg
	}
	c := n.GetAConst()
	if c == nil || c.GetSval() == nil {
		return "", false
	}
	return c.GetSval().Sval, true
}

// qualifiedLiteral reads the first argument of a call as a relation name written as a string
// ('seq', 'public.seq', '"My Seq"'), as PostgreSQL's regclass input reads it: unquoted parts are
// folded to lower case.
func qualifiedLiteral(args []*pg_query.Node) (TableRef, bool) {
	lit, ok := stringArg(args)
	if !ok {
		return TableRef{}, false
	}
	var parts []string
	for rest := strings.TrimSpace(lit); ; {
		var part string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			var b strings.Builder
			for {
				i := strings.IndexByte(rest[end:], '"')
				if i < 0 {
					return TableRef{}, false
				}
				b.WriteString(rest[end : end+i])
				end += i + 1
				if end < len(rest) && rest[end] == '"' {
					b.WriteByte('"')
					end++
					continue
				}
				break
			}
			part, rest = b.String(), rest[end:]
		} else {
			i := strings.IndexByte(rest, '.')
			if i < 0 {
				i = len(rest)
			}
			part, rest = strings.ToLower(strings.TrimSpace(rest[:i])), rest[i:]
			if part == "" || strings.ContainsAny(part, `" `) {
				return TableRef{}, false
			}
		}
		parts = append(parts, part)
		rest = strings.TrimSpace(rest)
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return TableRef{}, false
		}
		rest = strings.TrimSpace(rest[1:])
	}
	switch len(parts) {
	case 1:
		return TableRef{Name: parts[0]}, true
	case 2:
		return TableRef{Schema: parts[0], Name: parts[1]}, true
	}
	return TableRef{}, false // database.schema.name, or worse
}
