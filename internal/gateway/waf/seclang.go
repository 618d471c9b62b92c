package waf

import (
	"bufio"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"
)

// This file reads the SecLang configuration Rampart hands Coraza, far
// enough for the rule filter (rulefilter.go): which rules exist, in which
// order and phase, with which targets, operator, transformations, chain
// and skip actions, and which directives change rules after they are
// defined. Coraza's own parser is internal to it and keeps none of this
// reachable once the rules are compiled, so the filter reads the text
// again. Whatever this reader gets wrong can only make the filter keep a
// rule: a rule is filtered only when every part of it was understood, and
// the @rx patterns read here must equal, one by one and in order, those
// Coraza compiled (see compile).

// secKind is what a rule-creating directive made.
type secKind uint8

const (
	secRuleKind   secKind = iota // SecRule (with an operator)
	secActionKind                // SecAction (always matches)
	secMarkerKind                // SecMarker (phase 0: every phase sees it)
)

// secRule is one rule-creating directive as the filter sees it.
type secRule struct {
	kind  secKind
	id    int // 0 for chain children and markers
	phase int // 1–5; 0 for markers; -1 when not understood
	// vars is the target list as written ("ARGS|!ARGS:foo|&REQUEST_HEADERS").
	vars string
	// op is the operator without "@" and "!" ("rx", "pm"…); arg its argument.
	op, arg string
	negated bool
	// trans are the transformations after the last t:none, lower-cased.
	trans      []string
	multiMatch bool
	chain      bool // the next SecRule is this rule's child
	child      bool // this rule is the previous chain's child
	skip       int  // the skip:N action, 0 without one
	skipAfter  string
	marker     string // a SecMarker's name
	nolog      bool
	allow      bool // an allow action (the rest of the phase or request is skipped)
	// paranoia says the rule's setvar actions may touch a paranoia level.
	paranoia bool
	tags     []string
	hasMsg   bool
	// ctl are the rule's ctl actions ("ruleRemoveById=1"), as written.
	ctl []string
	// broken says the directive was not understood: such a rule is never
	// filtered.
	broken bool
}

// secConfig is the configuration as the filter needs it.
type secConfig struct {
	rules []secRule
	// updated are rules whose targets or actions a later directive
	// widens or changes (SecRuleUpdateTargetById without "!",
	// SecRuleUpdateActionById): they are never filtered.
	updated map[int]bool
	// removed are the rules SecRuleRemoveById takes out (those defined
	// before it: a removal ahead of a rule's definition removes nothing).
	removed map[int]bool
	// retargeted are rules a SecRuleUpdateTargetById narrows or widens.
	retargeted map[int]bool
	// removesByTag says SecRuleRemoveByTag or …ByMsg takes rules out.
	removesByTag bool
	// unsafe says a directive changes rules in a way the filter does not
	// follow (targets added by tag or message, default actions with
	// transformations): nothing is filtered.
	unsafe string
}

// maxIncludeDepth bounds nested Include directives.
const maxIncludeDepth = 8

// readSecLang reads directives, resolving Include against root as Coraza
// does (glob patterns in lexical order).
func readSecLang(directives string, root fs.FS) (*secConfig, error) {
	c := &secConfig{updated: map[int]bool{}, removed: map[int]bool{}, retargeted: map[int]bool{}}
	if err := c.read(directives, root, 0); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *secConfig) read(text string, root fs.FS, depth int) error {
	if depth > maxIncludeDepth {
		return fmt.Errorf("includes nested deeper than %d", maxIncludeDepth)
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var buf strings.Builder
	inBackticks := false
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		switch {
		case !inBackticks && line[len(line)-1] == '`':
			inBackticks = true
		case inBackticks && line[0] == '`':
			inBackticks = false
		}
		if inBackticks {
			buf.WriteString(line)
			buf.WriteString("\n")
			continue
		}
		if line[len(line)-1] == '\\' {
			buf.WriteString(line[:len(line)-1])
			continue
		}
		buf.WriteString(line)
		if err := c.directive(buf.String(), root, depth); err != nil {
			return err
		}
		buf.Reset()
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if inBackticks {
		return fmt.Errorf("backticks left open")
	}
	return nil
}

func (c *secConfig) directive(line string, root fs.FS, depth int) error {
	name, opts, _ := strings.Cut(line, " ")
	if len(opts) >= 3 && opts[0] == '"' && opts[len(opts)-1] == '"' {
		opts = strings.Trim(opts, `"`)
	}
	lname := strings.ToLower(name)
	if (lname == "secrule" || lname == "secaction") && usesRuleCollection(opts) {
		// Rules that do not match still write the RULE collection
		// (id, message…): taking one out could change what this reads.
		c.unsafe = "a rule reads the RULE collection"
	}
	switch lname {
	case "include":
		return c.include(opts, root, depth)
	case "secrule":
		c.addRule(parseSecRule(opts))
	case "secaction":
		r := secRule{kind: secActionKind}
		parseActions(&r, unquote(strings.TrimSpace(opts)))
		c.addRule(r)
	case "secmarker":
		c.addRule(secRule{kind: secMarkerKind, marker: unquote(strings.TrimSpace(opts))})
	case "secruleremovebyid":
		ids := map[int]bool{}
		c.markIDs(opts, ids)
		if ids[0] {
			c.unsafe = "SecRuleRemoveById of id 0 (every marker)"
		}
		for _, r := range c.rules {
			if r.id > 0 && ids[r.id] {
				c.removed[r.id] = true
			}
		}
	case "secruleremovebytag", "secruleremovebymsg":
		c.removesByTag = true
	case "secdefaultaction":
		if strings.Contains(strings.ToLower(opts), "t:") {
			c.unsafe = "SecDefaultAction with transformations"
		}
	case "secruleupdatetargetbyid":
		// As Coraza reads it: the last field is the targets, every
		// other one an id or a range.
		f := strings.Fields(opts)
		if len(f) < 2 {
			c.unsafe = "SecRuleUpdateTargetById without targets"
			break
		}
		ids := strings.Join(f[:len(f)-1], " ")
		c.markIDs(ids, c.retargeted)
		if widens(f[len(f)-1]) {
			c.markIDs(ids, c.updated)
		}
	case "secruleupdateactionbyid":
		// New actions (a setvar, a skip…) the reader would have to
		// apply to the rule it read: not followed.
		c.unsafe = "SecRuleUpdateActionById"
	case "secruleupdatetargetbytag", "secruleupdatetargetbymsg":
		if widens(lastField(opts)) {
			c.unsafe = name + " adding targets"
		}
	default:
		if strings.HasPrefix(strings.ToLower(name), "secruleupdate") {
			c.unsafe = name
		}
	}
	return nil
}

func (c *secConfig) include(pattern string, root fs.FS, depth int) error {
	pattern = strings.TrimSpace(pattern)
	if root == nil {
		return fmt.Errorf("include %q without a root file system", pattern)
	}
	names := []string{pattern}
	if strings.ContainsAny(pattern, "*?[") {
		var err error
		if names, err = fs.Glob(root, pattern); err != nil {
			return fmt.Errorf("include %q: %w", pattern, err)
		}
	}
	for _, n := range names {
		b, err := fs.ReadFile(root, path.Clean(n))
		if err != nil {
			return fmt.Errorf("include %q: %w", n, err)
		}
		if err := c.read(string(b), root, depth+1); err != nil {
			return fmt.Errorf("include %q: %w", n, err)
		}
	}
	return nil
}

// addRule appends r, making it the child of the previous rule when that
// one chains (the child inherits nothing the filter uses).
func (c *secConfig) addRule(r secRule) {
	if n := len(c.rules); n > 0 && c.rules[n-1].chain && (r.kind == secRuleKind || r.kind == secActionKind) {
		r.child = true
		// A child's own chain action continues the chain; the parent's
		// flag is spent.
		c.rules[n-1].chain = false
		c.rules = append(c.rules, r)
		return
	}
	c.rules = append(c.rules, r)
}

// paranoiaVars are the variables that set a CRS paranoia level.
var paranoiaVars = []string{"tx.detection_paranoia_level", "tx.blocking_paranoia_level", "tx.paranoia_level", "tx.executing_paranoia_level"}

// setsParanoia reports whether a setvar ("tx.name=value", "!tx.name") may
// set a paranoia level: its name is one, or a macro in it could make it
// one.
func setsParanoia(setvar string) bool {
	name, _, _ := strings.Cut(setvar, "=")
	name = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(name), "!")))
	if strings.Contains(name, "paranoia_level") {
		return true
	}
	if i := strings.Index(name, "%{"); i >= 0 {
		for _, p := range paranoiaVars {
			if strings.HasPrefix(p, name[:i]) {
				return true
			}
		}
	}
	return false
}

// usesRuleCollection reports whether a rule's text reads the RULE
// collection: a %{rule.…} macro or a RULE target.
func usesRuleCollection(opts string) bool {
	l := strings.ToLower(opts)
	if strings.Contains(l, "%{rule.") {
		return true
	}
	vars, _, _ := strings.Cut(strings.TrimSpace(opts), " ")
	for _, v := range splitVars(vars) {
		name, _, _ := cutVarName(strings.TrimLeft(v, "!&"))
		if strings.EqualFold(name, "RULE") {
			return true
		}
	}
	return false
}

// markIDs adds the ids and ranges ("1 2 10-20") of a directive to set;
// ids it cannot read make the configuration unsafe.
func (c *secConfig) markIDs(ids string, set map[int]bool) {
	if err := addIDs(ids, set); err != nil {
		c.unsafe = err.Error()
	}
}

// addIDs adds the ids and ranges ("1 2 10-20", or comma-separated) of ids
// to set.
func addIDs(ids string, set map[int]bool) error {
	for _, f := range strings.FieldsFunc(ids, func(r rune) bool { return r == ',' || r == ' ' }) {
		lo, hi, isRange := strings.Cut(f, "-")
		a, err1 := strconv.Atoi(lo)
		b, err2 := a, error(nil)
		if isRange {
			b, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || b < a || b-a > 1_000_000 {
			return fmt.Errorf("rule ids %q not understood", f)
		}
		for id := a; id <= b; id++ {
			set[id] = true
		}
	}
	return nil
}

// widens reports whether a target list for SecRuleUpdateTarget* adds a
// target (any entry without "!") rather than only excluding some.
func widens(targets string) bool {
	targets = unquote(strings.TrimSpace(targets))
	if targets == "" {
		return true
	}
	for _, t := range splitVars(targets) {
		if !strings.HasPrefix(t, "!") {
			return true
		}
	}
	return false
}

func lastField(s string) string {
	f := strings.Fields(s)
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

// parseSecRule reads `VARIABLES "OPERATOR" "ACTIONS"`.
func parseSecRule(opts string) secRule {
	r := secRule{kind: secRuleKind, phase: 2}
	opts = strings.Trim(opts, " ")
	vars, rest, ok := strings.Cut(opts, " ")
	rest = strings.TrimLeft(rest, " ")
	if !ok || rest == "" || rest[0] != '"' {
		r.broken = true
		return r
	}
	op, rest, ok := cutQuoted(rest)
	if !ok {
		r.broken = true
		return r
	}
	r.vars = vars
	op = strings.ReplaceAll(op[1:len(op)-1], `\"`, `"`)
	switch {
	case op == "" || op[0] != '@' && op[0] != '!':
		op = "@rx " + op
	case op == "!":
		op = "!@rx"
	case len(op) > 1 && op[0] == '!' && op[1] != '@':
		op = "!@rx " + op[1:]
	}
	name, arg, _ := strings.Cut(op, " ")
	name = strings.TrimSpace(name)
	if strings.HasPrefix(name, "!") {
		r.negated = true
		name = name[1:]
	}
	r.op = strings.ToLower(strings.TrimPrefix(name, "@"))
	if r.op == "pmf" {
		r.op = "pmfromfile"
	}
	r.arg = strings.TrimSpace(arg)
	rest = strings.TrimLeft(rest, " ")
	if rest != "" {
		if len(rest) < 2 || rest[0] != '"' || rest[len(rest)-1] != '"' {
			r.broken = true
			return r
		}
		parseActions(&r, rest[1:len(rest)-1])
	}
	return r
}

// cutQuoted cuts the double-quoted string s starts with (a quote preceded
// by an odd run of backslashes is escaped).
func cutQuoted(s string) (quoted, rest string, ok bool) {
	escapes := 0
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\':
			escapes++
		case s[i] == '"' && escapes%2 == 0:
			return s[:i+1], s[i+1:], true
		default:
			escapes = 0
		}
	}
	return "", "", false
}

func unquote(s string) string {
	if len(s) >= 2 && (s[0] == '"' && s[len(s)-1] == '"' || s[0] == '\'' && s[len(s)-1] == '\'') {
		return s[1 : len(s)-1]
	}
	return s
}

// parseActions reads a comma-separated action list into r: phase, id,
// transformations, chain, skip and multiMatch. Commas inside single
// quotes or after a backslash do not separate actions.
func parseActions(r *secRule, actions string) {
	if r.kind != secRuleKind {
		r.phase = 2
	}
	start, inQuotes := 0, false
	for i := 0; i <= len(actions); i++ {
		if i < len(actions) {
			if i > 0 && actions[i-1] == '\\' {
				continue
			}
			switch actions[i] {
			case '\'':
				inQuotes = !inQuotes
				continue
			case ',':
				if !inQuotes {
					break
				}
				continue
			default:
				continue
			}
		}
		action(r, actions[start:i])
		start = i + 1
	}
	if inQuotes {
		r.broken = true
	}
}

func action(r *secRule, a string) {
	key, val, _ := strings.Cut(a, ":")
	key = strings.ToLower(strings.TrimSpace(key))
	val = unquote(strings.TrimSpace(val))
	switch key {
	case "id":
		id, err := strconv.Atoi(val)
		if err != nil {
			r.broken = true
		}
		r.id = id
	case "phase":
		switch strings.ToLower(val) {
		case "1", "2", "3", "4", "5":
			r.phase = int(val[0] - '0')
		case "request":
			r.phase = 2
		case "response":
			r.phase = 4
		case "logging":
			r.phase = 5
		default:
			r.phase = -1
		}
	case "t":
		if strings.EqualFold(val, "none") {
			r.trans = r.trans[:0]
		} else {
			r.trans = append(r.trans, strings.ToLower(val))
		}
	case "chain":
		r.chain = true
	case "multimatch":
		r.multiMatch = true
	case "tag":
		r.tags = append(r.tags, val)
	case "msg":
		r.hasMsg = true
	case "ctl":
		r.ctl = append(r.ctl, val)
	case "skipafter":
		r.skipAfter = val
	case "nolog":
		r.nolog = true
	case "log":
		r.nolog = false
	case "setvar":
		if setsParanoia(val) {
			r.paranoia = true
		}
	case "allow":
		r.allow = true
	case "skip":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 {
			r.broken = true
		}
		r.skip = n
	}
}

// splitVars splits a target list at the "|" between targets, keeping the
// ones inside a /regex/ or 'quoted' key.
func splitVars(vars string) []string {
	var out []string
	start := 0
	inRegex, inQuote, escaped, inKey := false, false, false, false
	for i := 0; i < len(vars); i++ {
		c := vars[i]
		switch {
		case inRegex:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '/':
				inRegex = false
			}
		case inQuote:
			if c == '\'' {
				inQuote = false
			}
		case c == '|':
			out = append(out, vars[start:i])
			start = i + 1
			inKey = false
		case c == ':' && !inKey:
			inKey = true
			if i+1 < len(vars) && vars[i+1] == '/' && !xpathVar(vars[start:i]) {
				inRegex = true
				i++
			} else if i+1 < len(vars) && vars[i+1] == '\'' {
				inQuote = true
				i++
			}
		}
	}
	return append(out, vars[start:])
}

// xpathVar reports whether name (with any "!" or "&") takes an XPath key,
// which may start with "/" without being a regular expression.
func xpathVar(name string) bool {
	name = strings.TrimLeft(name, "!&")
	return name == "XML" || name == "JSON"
}
