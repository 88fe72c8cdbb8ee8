package permissions

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/cairn-mcp/cairn/internal/names"
)

// Load reads and checks a permissions file. Every problem is reported with the file's name,
// the line, the role and the field, all at once.
func Load(file string, tools Tools) (*Set, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read permissions file: %w", err)
	}
	return Parse(data, file, tools)
}

// Parse checks a permissions file's contents; source names it in errors.
func Parse(data []byte, source string, tools Tools) (*Set, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := err.Error()
		if strings.Contains(msg, "alias") || strings.Contains(msg, "did not find expected alphabetic or numeric character") {
			msg += ` (a bare * starts a YAML alias: quote it, "*")`
		}
		return nil, fmt.Errorf("permissions file %s: %s", source, msg)
	}
	p := &parser{source: source, tools: tools}
	set := &Set{source: source, roles: map[string]*role{}, tools: tools}
	if len(doc.Content) == 0 {
		return nil, fmt.Errorf("permissions file %s is empty: it needs roles, e.g.\nroles:\n  reader: {toolsets: [generic], operations: [read], tables: [\"public.*\"]}", source)
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, p.errf(root, "want a mapping with roles (and optionally default_role), found %s", kindName(root))
	}
	var defaultRole *yaml.Node
	var rolesNode *yaml.Node
	p.mapping(root, "", func(key string, k, v *yaml.Node) {
		switch key {
		case "default_role":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				p.errs = append(p.errs, p.errf(v, "default_role must be a role name"))
				return
			}
			defaultRole = v
		case "roles":
			rolesNode = v
		default:
			p.errs = append(p.errs, p.errf(k, "unknown key %q: the file has roles and default_role%s", key, suggest(key, []string{"roles", "default_role"})))
		}
	})
	switch {
	case rolesNode == nil:
		p.errs = append(p.errs, p.errf(root, "roles is missing: define at least one role"))
	case rolesNode.Kind != yaml.MappingNode:
		p.errs = append(p.errs, p.errf(rolesNode, "roles must map role names to their permissions, found %s", kindName(rolesNode)))
	default:
		p.mapping(rolesNode, "roles", func(name string, k, v *yaml.Node) {
			if strings.TrimSpace(name) == "" || strings.ContainsAny(name, " \t\n") {
				p.errs = append(p.errs, p.errf(k, "role name %q: use a name without spaces", name))
				return
			}
			if r := p.role(name, k, v); r != nil {
				set.roles[name] = r
			}
		})
		if len(rolesNode.Content) == 0 {
			p.errs = append(p.errs, p.errf(rolesNode, "roles is empty: define at least one role"))
		}
	}
	if defaultRole != nil {
		if _, ok := set.roles[defaultRole.Value]; !ok && !p.roleSeen(defaultRole.Value) {
			p.errs = append(p.errs, p.errf(defaultRole, "default_role %q is not one of the roles (%s)%s", defaultRole.Value, strings.Join(p.roleNames, ", "), suggest(defaultRole.Value, p.roleNames)))
		}
		set.defaultRole = defaultRole.Value
	}
	if len(p.errs) > 0 {
		return nil, errors.Join(p.errs...)
	}
	return set, nil
}

type parser struct {
	source    string
	tools     Tools
	errs      []error
	roleNames []string
}

func (p *parser) roleSeen(name string) bool { return slices.Contains(p.roleNames, name) }

func (p *parser) errf(n *yaml.Node, format string, args ...any) error {
	return fmt.Errorf("permissions file %s:%d: %s", p.source, n.Line, fmt.Sprintf(format, args...))
}

// mapping calls f for each key of a mapping node, refusing duplicate and non-scalar keys.
func (p *parser) mapping(n *yaml.Node, where string, f func(key string, k, v *yaml.Node)) {
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias // an anchored list or role used again
		}
		if k.Kind != yaml.ScalarNode {
			p.errs = append(p.errs, p.errf(k, "%skeys must be plain names", prefix(where)))
			continue
		}
		if seen[k.Value] {
			p.errs = append(p.errs, p.errf(k, "%s%q is given twice", prefix(where), k.Value))
			continue
		}
		seen[k.Value] = true
		f(k.Value, k, v)
	}
}

func prefix(where string) string {
	if where == "" {
		return ""
	}
	return where + ": "
}

// roleKeys are the fields of a role.
var roleKeys = []string{"description", "toolsets", "tools", "tools_deny", "operations", "tables", "tables_deny", "write_tables", "functions"}

func (p *parser) role(name string, k, v *yaml.Node) *role {
	p.roleNames = append(p.roleNames, name)
	where := fmt.Sprintf("role %q", name)
	if v.Kind != yaml.MappingNode {
		p.errs = append(p.errs, p.errf(v, "%s: want a mapping of toolsets, tools, operations, tables, …, found %s", where, kindName(v)))
		return nil
	}
	before := len(p.errs)
	r := &role{name: name}
	given := map[string]*yaml.Node{}
	p.mapping(v, where, func(key string, kn, vn *yaml.Node) {
		if !slices.Contains(roleKeys, key) {
			p.errs = append(p.errs, p.errf(kn, "%s: unknown field %q (fields: %s)%s", where, key, strings.Join(roleKeys, ", "), suggest(key, roleKeys)))
			return
		}
		given[key] = kn
		field := where + ": " + key
		switch key {
		case "description":
			if vn.Kind != yaml.ScalarNode {
				p.errs = append(p.errs, p.errf(vn, "%s must be text", field))
			}
		case "toolsets":
			known := p.toolsets()
			r.toolsets = p.list(vn, field, func(s string) error {
				if s == "*" || slices.Contains(known, s) {
					return nil
				}
				return fmt.Errorf("unknown toolset %q (toolsets: %s, or \"*\" for all)%s", s, strings.Join(known, ", "), suggest(s, known))
			})
		case "tools", "tools_deny":
			known := p.toolNames()
			list := p.list(vn, field, func(s string) error {
				if s == "*" {
					return nil
				}
				if _, ok := p.tools[s]; ok {
					return nil
				}
				return fmt.Errorf("unknown tool %q%s", s, suggest(s, known))
			})
			if key == "tools" {
				r.tools = list
			} else {
				r.toolsDeny = list
			}
		case "operations":
			for _, s := range p.list(vn, field, func(s string) error {
				if slices.Contains(operations, Operation(s)) {
					return nil
				}
				return fmt.Errorf("unknown operation %q: use read, write or ddl%s", s, suggest(s, []string{"read", "write", "ddl"}))
			}) {
				if !slices.Contains(r.ops, Operation(s)) {
					r.ops = append(r.ops, Operation(s))
				}
			}
		case "tables", "tables_deny", "write_tables", "functions":
			var ps []pattern
			for _, s := range p.list(vn, field, func(s string) error { _, err := parsePattern(s); return err }) {
				pt, _ := parsePattern(s)
				ps = append(ps, pt)
			}
			if ps == nil {
				ps = []pattern{}
			}
			switch key {
			case "tables":
				r.tables = ps
			case "tables_deny":
				r.tablesDeny = ps
			case "write_tables":
				r.writeTables = ps
			case "functions":
				r.functions = ps
			}
		}
	})
	if given["operations"] == nil {
		p.errs = append(p.errs, p.errf(k, "%s: operations is missing: list what the role may do, e.g. [read] or [read, write] ([] for nothing)", where))
	}
	if given["tables"] == nil {
		p.errs = append(p.errs, p.errf(k, "%s: tables is missing: list the schema.table globs its statements may touch, e.g. [\"public.*\"] ([\"*\"] for every table)", where))
	}
	if given["toolsets"] == nil && given["tools"] == nil {
		p.errs = append(p.errs, p.errf(k, "%s: neither toolsets nor tools is given, so it could call no tool: e.g. toolsets: [generic] (\"*\" for every tool)", where))
	}
	if n := given["write_tables"]; n != nil && !r.has(Write) && !r.has(DDL) && given["operations"] != nil {
		p.errs = append(p.errs, p.errf(n, "%s: write_tables is set but operations has neither write nor ddl", where))
	}
	if len(p.errs) > before {
		return nil
	}
	return r
}

// list reads a sequence of strings (null is empty), checking each with check.
func (p *parser) list(n *yaml.Node, field string, check func(string) error) []string {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return []string{}
	}
	if n.Kind != yaml.SequenceNode {
		example := `["*"]`
		if n.Kind == yaml.ScalarNode && n.Value != "" {
			example = fmt.Sprintf("[%q]", n.Value)
		}
		p.errs = append(p.errs, p.errf(n, "%s must be a list, e.g. %s", field, example))
		return nil
	}
	out := []string{}
	for _, item := range n.Content {
		if item.Kind != yaml.ScalarNode || item.Value == "" {
			p.errs = append(p.errs, p.errf(item, "%s: each entry must be a non-empty name, found %s", field, kindName(item)))
			continue
		}
		if err := check(item.Value); err != nil {
			p.errs = append(p.errs, p.errf(item, "%s: %v", field, err))
			continue
		}
		out = append(out, item.Value)
	}
	return out
}

func (p *parser) toolsets() []string {
	var ts []string
	for _, t := range p.tools {
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	sort.Strings(ts)
	return ts
}

func (p *parser) toolNames() []string {
	var ns []string
	for n := range p.tools {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return fmt.Sprintf("%q", n.Value)
	case yaml.AliasNode:
		return "an alias"
	}
	return "something else"
}

// suggest returns ` (did you mean "x"?)` for the candidate nearest to s, or "".
func suggest(s string, candidates []string) string {
	best, bestD := "", 3
	for _, c := range candidates {
		if d := names.EditDistance(s, c, 2); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || best == s {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}
