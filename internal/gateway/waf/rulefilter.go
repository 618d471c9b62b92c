package waf

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/collection"
	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types"
	"github.com/corazawaf/coraza/v3/types/variables"
	"github.com/corazawaf/libinjection-go"
	"golang.org/x/net/html" // the decoder Coraza's htmlEntityDecode uses
)

// The rule filter. Coraza evaluates each rule of a phase against each
// value of its targets, and its fixed work per rule and per value
// (collecting the values, its transformation cache, the RULE collection
// with the expanded message) costs more than the @rx operators on a benign
// request. Yet on a benign request almost no rule can match: the filter
// finds those that cannot before the phase runs and removes them from the
// transaction, as the CRS's own ctl:ruleRemoveById does, so Coraza never
// walks them.
//
// It runs as an action of Rampart's (rampart_rulefilter) on a SecAction
// placed before every other rule of phases 1 and 2. A rule is removable
// when all of this holds, else it always runs:
//
//   - it is a SecRule of that phase whose operator is a non-negated @rx
//     with an alphabet filter (alphabet.go), the very operator Coraza
//     compiled for it;
//   - each of its targets is a request collection that no rule changes
//     during the phase (ARGS, headers, cookies, URI, body…; not TX or
//     MATCHED_VARS), so the values seen before the phase are the values
//     the rule will see;
//   - each of its transformations has a known effect on a value's byte
//     set (lowercase adds the lower-case letters of the set, urlDecodeUni
//     may produce any byte when the set has "%"…), so the bytes of every
//     transformed value, and of every intermediate one for multiMatch, lie
//     in a set computed from the raw value's bytes;
//   - no later directive widens its targets or changes its actions, and it
//     is not among the rules a skip:N action of its phase counts.
//
// Then for every value of every target the rule's pattern cannot match
// any string over the value's (transformed) byte set — the question the
// @rx operator's alphabet filter answers, from the same per-set table —
// and so it cannot match the value. Values with a byte of 0x80 or more
// keep every rule on their targets. Chained rules go with their parent.
//
// The values' byte sets are computed once per collection and phase and
// deduplicated: a benign JSON body's hundreds of values have a handful of
// sets.

// ruleFilterAction is the action name; its argument names the rule set's
// filter in filters.
const ruleFilterAction = "rampart_rulefilter"

// Rule ids of Rampart's two SecActions (ModSecurity's range for local
// rules).
const (
	ruleFilterID1 = 99001
	ruleFilterID2 = 99002
)

// filters holds the filter slot of each rule set being compiled by key,
// for the action's Init to find; the filter is stored in the slot after
// the compile, when the entry is gone again.
var (
	filters    sync.Map // string → *atomic.Pointer[ruleFilter]
	filterKeys atomic.Uint64
)

var registerActionOnce sync.Once

func registerRuleFilter() {
	registerActionOnce.Do(func() {
		plugins.RegisterAction(ruleFilterAction, func() plugintypes.Action { return &ruleFilterStep{} })
	})
}

// newFilterSlot allocates a key for a rule set about to compile.
func newFilterSlot() (string, *atomic.Pointer[ruleFilter]) {
	key := strconv.FormatUint(filterKeys.Add(1), 10)
	p := new(atomic.Pointer[ruleFilter])
	filters.Store(key, p)
	return key, p
}

func dropFilterSlot(key string) { filters.Delete(key) }

// ruleFilterStep is the action: it removes the unmatchable rules of its
// rule's phase.
type ruleFilterStep struct {
	slot *atomic.Pointer[ruleFilter]
}

func (a *ruleFilterStep) Init(_ plugintypes.RuleMetadata, data string) error {
	v, ok := filters.Load(data)
	if !ok {
		return fmt.Errorf("%s: no rule filter %q", ruleFilterAction, data)
	}
	a.slot = v.(*atomic.Pointer[ruleFilter])
	return nil
}

func (a *ruleFilterStep) Type() plugintypes.ActionType { return plugintypes.ActionTypeNondisruptive }

// ruleRemover is the part of Coraza's transaction ctl:ruleRemoveById
// uses.
type ruleRemover interface{ RemoveRuleByID(id int) }

func (a *ruleFilterStep) Evaluate(r plugintypes.RuleMetadata, tx plugintypes.TransactionState) {
	f := a.slot.Load()
	if f == nil {
		return
	}
	rm, ok := tx.(ruleRemover)
	if !ok {
		return
	}
	var rules []filterRule
	switch r.ID() {
	case ruleFilterID1:
		rules = f.phase1
	case ruleFilterID2:
		rules = f.phase2
	default:
		return
	}
	s := scratchPool.Get().(*valueSets) // empty: reset before Put
	removed := 0
	s.size(len(f.targets))
	for i := range rules {
		if !rules[i].mayMatch(tx, s, f.targets) {
			rm.RemoveRuleByID(rules[i].id)
			removed++
		}
	}
	s.reset()
	scratchPool.Put(s)
	if observeFilter != nil {
		observeFilter(r.ID(), removed)
	}
}

// observeFilter, when set (by tests), learns how many rules each run of
// the filter removed.
var observeFilter func(filterRuleID, removed int)

// ruleFilter is one rule set's removable rules by phase, and the
// distinct targets they read (a request reads each once).
type ruleFilter struct {
	phase1, phase2 []filterRule
	targets        []target
}

// opKind is the operator of a removable rule.
type opKind uint8

const (
	opRx opKind = iota
	opBinaryRx
	opPM
	opSQLi
	opXSS
	opByteRange
)

// filterRule is a removable rule.
type filterRule struct {
	id      int
	targets []target
	tix     []int // targets' indexes in the filter's target list
	trans   []step
	// ident are the bytes that may make a transformation of the rule
	// change a value: over a set without them, every transformation is
	// the identity and the operator can be run on the raw values.
	ident byteSet
	kind  opKind
	rx    *rx
	brx   *binaryRx
	pm    *pm
	valid byteSet // opByteRange: the allowed ASCII bytes
}

type target struct {
	v     variables.RuleVariable
	key   string // a plain key (REQUEST_HEADERS:User-Agent), "" for the whole collection
	count bool   // &VAR: the rule sees the number of values
}

// mayMatch reports whether the rule may match some value of the request:
// false only when it cannot.
func (fr *filterRule) mayMatch(tx plugintypes.TransactionState, s *valueSets, targets []target) bool {
	for n, t := range fr.targets {
		if t.count {
			if set, ok := closeOver(countSet, fr.trans); !ok || fr.setMayMatch(set) {
				return true
			}
			continue
		}
		groups, ok := s.of(tx, fr.tix[n], targets)
		if !ok {
			return true
		}
		for i := range groups {
			g := &groups[i]
			if set, ok := closeOver(g.set, fr.trans); ok && !fr.setMayMatch(set) {
				continue
			}
			if !g.exact {
				return true
			}
			same := g.set[0]&fr.ident[0] == 0 && g.set[1]&fr.ident[1] == 0
			for _, v := range g.vals {
				if !same && !fr.unchanged(g.set, v) || fr.matches(v) {
					return true
				}
			}
		}
	}
	return false
}

// unchanged reports whether every transformation of the rule leaves v
// (whose byte set is set) as it is.
func (fr *filterRule) unchanged(set byteSet, v string) bool {
	for i := range fr.trans {
		st := &fr.trans[i]
		id := st.ident.or(st.trig)
		if set[0]&id[0] == 0 && set[1]&id[1] == 0 {
			continue
		}
		if st.same == nil || !st.same(v) {
			return false
		}
	}
	return true
}

// setMayMatch reports whether a value over set may match the operator.
func (fr *filterRule) setMayMatch(set byteSet) bool {
	switch fr.kind {
	case opRx:
		return fr.rx.alpha == nil || fr.rx.alpha.mayMatch(set)
	case opBinaryRx:
		return fr.brx.alpha == nil || fr.brx.alpha.mayMatch(set)
	case opPM:
		return fr.pm.mayHold(set)
	case opByteRange:
		return !subset(set, fr.valid)
	}
	return true
}

// matches runs the operator on a value the rule's transformations leave
// as it is, exactly as Coraza would (without captures).
func (fr *filterRule) matches(v string) bool {
	switch fr.kind {
	case opRx:
		return fr.rx.matches(v)
	case opBinaryRx:
		if fr.brx.alpha != nil && !fr.brx.alpha.mayMatch(mustASCII(v)) {
			return false
		}
		return fr.brx.re.MatchString(v)
	case opPM:
		return fr.pm.matches(v)
	case opSQLi:
		ok, _ := libinjection.IsSQLi(v)
		return ok
	case opXSS:
		return libinjection.IsXSS(v)
	case opByteRange:
		for i := 0; i < len(v); i++ {
			if !fr.valid.has(v[i]) {
				return true
			}
		}
		return false
	}
	return true
}

// mustASCII is the byte set of v, which the filter only holds when ASCII.
func mustASCII(v string) byteSet {
	set, _ := alphabetOf(v)
	return set
}

// countSet is the byte set of a count ("0"–"9", widened as alphabetOf
// widens digits).
var countSet = byteSet{digits, 0}

// Limits of the per-request value groups: past maxGroups distinct sets
// per target the rest merge into their union (still sound: what cannot
// match over the union cannot match over a part of it), which is then
// never run exactly; a group of more than maxExact values is not run
// exactly either (the rule stays). Running the operator on a value here
// costs less than Coraza's evaluation of it, so the limit only bounds the
// filter's memory.
const (
	maxGroups = 16
	maxExact  = 1 << 14
)

// group is the values of a target sharing one byte set.
type group struct {
	set   byteSet
	vals  []string
	exact bool // vals holds every value of the group
}

// valueSets caches, per target (by index), its values grouped by byte
// set, for one run of the filter.
type valueSets struct {
	vals    []targetValues
	touched []int // the indexes read in this run
	seen    map[string]struct{}
}

type targetValues struct {
	groups []group
	done   bool
	ok     bool
}

var scratchPool = sync.Pool{New: func() any { return &valueSets{seen: map[string]struct{}{}} }}

// size makes room for n targets.
func (s *valueSets) size(n int) {
	if len(s.vals) < n {
		s.vals = append(s.vals, make([]targetValues, n-len(s.vals))...)
	}
}

// reset empties s, dropping its references to the last request's values.
func (s *valueSets) reset() {
	clear(s.seen)
	for _, i := range s.touched {
		tv := &s.vals[i]
		for j := range tv.groups {
			clear(tv.groups[j].vals)
			tv.groups[j].vals = tv.groups[j].vals[:0]
		}
		tv.groups, tv.done, tv.ok = tv.groups[:0], false, false
	}
	s.touched = s.touched[:0]
}

// of returns the values of targets[i] grouped by byte set, or false when
// a value has a byte of 0x80 or more or the collection is unknown.
func (s *valueSets) of(tx plugintypes.TransactionState, i int, targets []target) ([]group, bool) {
	tv := &s.vals[i]
	if tv.done {
		return tv.groups, tv.ok
	}
	tv.done = true
	s.touched = append(s.touched, i)
	t := targets[i]
	col := tx.Collection(t.v)
	if col == nil {
		return nil, false
	}
	var values []types.MatchData
	if t.key != "" {
		k, ok := col.(collection.Keyed)
		if !ok {
			return nil, false
		}
		values = k.FindString(t.key)
	} else {
		values = col.FindAll()
	}
	clear(s.seen)
	for _, md := range values {
		v := md.Value()
		if len(values) > 1 {
			if _, dup := s.seen[v]; dup {
				continue // the same value answers the same
			}
			s.seen[v] = struct{}{}
		}
		set, ascii := alphabetOf(v)
		if !ascii {
			return nil, false
		}
		tv.groups = addValue(tv.groups, set, v)
	}
	tv.ok = true
	return tv.groups, true
}

func addValue(groups []group, set byteSet, v string) []group {
	for i := range groups {
		g := &groups[i]
		if g.set == set {
			if g.exact && len(g.vals) < maxExact {
				g.vals = append(g.vals, v)
			} else {
				g.exact, g.vals = false, g.vals[:0]
			}
			return groups
		}
	}
	if len(groups) < maxGroups {
		if len(groups) < cap(groups) {
			groups = groups[:len(groups)+1]
			g := &groups[len(groups)-1]
			g.set, g.exact, g.vals = set, true, append(g.vals[:0], v)
			return groups
		}
		return append(groups, group{set: set, vals: []string{v}, exact: true})
	}
	// Merge everything into the last group's union, which no longer runs
	// exactly.
	last := &groups[len(groups)-1]
	last.set = last.set.or(set)
	last.exact, last.vals = false, last.vals[:0]
	return groups
}

// stableVars are the collections no rule changes during phases 1 and 2:
// the request as Coraza read it (phase 1: line and headers; phase 2 adds
// the body). Their values before the phase are those its rules see.
var stableVars = map[variables.RuleVariable]int{
	variables.Args:                1,
	variables.ArgsGet:             1,
	variables.ArgsNames:           1,
	variables.ArgsGetNames:        1,
	variables.ArgsPath:            1,
	variables.RequestHeaders:      1,
	variables.RequestHeadersNames: 1,
	variables.RequestCookies:      1,
	variables.RequestCookiesNames: 1,
	variables.RequestURI:          1,
	variables.RequestURIRaw:       1,
	variables.RequestFilename:     1,
	variables.RequestBasename:     1,
	variables.RequestLine:         1,
	variables.RequestMethod:       1,
	variables.RequestProtocol:     1,
	variables.QueryString:         1,
	variables.ArgsPost:            2,
	variables.ArgsPostNames:       2,
	variables.RequestBody:         2,
	variables.XML:                 2,
	variables.Files:               2,
	variables.FilesNames:          2,
}

// A step is a transformation's effect on a byte set: for every ASCII
// value v over a set S without trig bytes, the bytes of t(v) lie in
// (S ∪ adds), lower-cased when lower is set; with a trig byte the result
// may hold any byte. ident are the bytes without which t(v) = v; same,
// when set, tells for one value with some of them whether t(v) = v.
type step struct {
	trig, adds, ident byteSet
	lower             bool
	same              func(v string) bool
}

func closeOver(set byteSet, trans []step) (byteSet, bool) {
	for i := range trans {
		t := &trans[i]
		if set[0]&t.trig[0] != 0 || set[1]&t.trig[1] != 0 {
			return set, false
		}
		set = set.or(t.adds)
		if t.lower {
			set = lowerOf(set)
		}
	}
	return set, true
}

func bit(c byte) byteSet {
	var b byteSet
	b[c>>6] |= 1 << (c & 63)
	return b
}

func bytesOf(s string) byteSet {
	var b byteSet
	for i := 0; i < len(s); i++ {
		b = b.or(bit(s[i]))
	}
	return b
}

func (b byteSet) has(c byte) bool { return c < 0x80 && b[c>>6]&(1<<(c&63)) != 0 }

func (b byteSet) or(o byteSet) byteSet { return byteSet{b[0] | o[0], b[1] | o[1]} }

var (
	upper      = bytesOf("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
	space      = bit(' ')
	whitespace = bytesOf(" \t\n\v\f\r")
	comments   = bytesOf("/*<-#")
)

// lowerOf adds the lower-case form of the set's upper-case letters.
func lowerOf(b byteSet) byteSet {
	u := b[1] & upper[1] // 'A'..'Z' are bits 1..26 of word 1
	return byteSet{b[0], b[1] | u<<32}
}

// steps are the transformations whose effect the filter knows; a rule
// with any other is never filtered. FuzzClosures and FuzzIdentity check
// each against Coraza's own transformation.
var steps = map[string]step{
	"none":               {},
	"lowercase":          {lower: true, ident: upper},
	"urldecode":          {trig: bytesOf("%+"), ident: bytesOf("%+")},
	"urldecodeuni":       {trig: bytesOf("%+"), ident: bytesOf("%+")},
	"htmlentitydecode":   {trig: bit('&'), ident: bit('&'), same: func(v string) bool { return html.UnescapeString(v) == v }}, // x/net/html, as Coraza
	"jsdecode":           {trig: bit('\\'), ident: bit('\\')},
	"cssdecode":          {trig: bit('\\'), ident: bit('\\')},
	"escapeseqdecode":    {trig: bit('\\'), ident: bit('\\')},
	"utf8tounicode":      {}, // changes only bytes of 0x80 or more
	"removenulls":        {ident: bit(0)},
	"replacenulls":       {adds: space, ident: bit(0)},
	"removewhitespace":   {ident: whitespace},
	"compresswhitespace": {adds: space, ident: whitespace, same: spacesCompressed},
	"trim":               {ident: whitespace, same: func(v string) bool { return strings.Trim(v, trimSpaces) == v }},
	"trimleft":           {ident: whitespace, same: func(v string) bool { return strings.TrimLeft(v, trimSpaces) == v }},
	"trimright":          {ident: whitespace, same: func(v string) bool { return strings.TrimRight(v, trimSpaces) == v }},
	"normalisepath":      {ident: bytesOf("/."), same: pathClean},
	"normalizepath":      {ident: bytesOf("/."), same: pathClean},
	// …Win also drops NTFS stream suffixes (":x") and trailing dots and
	// spaces of path components.
	"normalisepathwin":   {adds: bit('/'), ident: bytesOf("/.\\: "), same: winPathClean},
	"normalizepathwin":   {adds: bit('/'), ident: bytesOf("/.\\: "), same: winPathClean},
	"removecomments":     {adds: space.or(bit(0)), ident: comments}, // its end pad can leak out as NUL
	"removecommentschar": {ident: comments},
	"replacecomments":    {adds: space, ident: comments},
	"cmdline":            {lower: true, adds: space, ident: upper.or(whitespace).or(bytesOf("\"'\\^,;/("))},
}

// trimSpaces are the bytes Coraza's trim transformations cut.
const trimSpaces = " \t\n\r\f\v"

// spacesCompressed: compressWhitespace leaves v alone (no whitespace but
// single spaces).
func spacesCompressed(v string) bool {
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\t', '\n', '\v', '\f', '\r':
			return false
		case ' ':
			if i > 0 && v[i-1] == ' ' {
				return false
			}
		}
	}
	return true
}

// pathClean: normalizePath leaves v alone (Clean changes nothing, and
// keeps a trailing slash).
func pathClean(v string) bool {
	if v == "" {
		return true
	}
	c := filepath.Clean(v)
	if c == "." {
		return false
	}
	if v[len(v)-1] == '/' {
		return c+"/" == v
	}
	return c == v
}

// winPathClean: normalizePathWin leaves v alone (no backslash or colon,
// Clean changes nothing, and no path component ends with a dot or a
// space unless it is all dots).
func winPathClean(v string) bool {
	if strings.ContainsAny(v, "\\:") || !pathClean(v) {
		return false
	}
	for _, seg := range strings.Split(v, "/") {
		if seg == "" || strings.Trim(seg, ".") == "" {
			continue
		}
		if last := seg[len(seg)-1]; last == '.' || last == ' ' {
			return false
		}
	}
	return true
}

// buildFilter picks the removable rules of cfg. ops are Rampart's
// operators Coraza created, in order; they must be those of cfg's rules
// one for one, or nothing is filtered.
func buildFilter(cfg *secConfig, ops []opRecord) (*ruleFilter, error) {
	if cfg.unsafe != "" {
		return nil, fmt.Errorf("rule filter off: %s", cfg.unsafe)
	}
	// Pair each rule with the operator Coraza compiled for it.
	compiled := make([]plugintypes.Operator, len(cfg.rules))
	k := 0
	for i, r := range cfg.rules {
		if r.kind != secRuleKind || (r.op != "rx" && r.op != "pm" && r.op != "pmfromfile") {
			continue
		}
		if k >= len(ops) || ops[k].name != r.op || ops[k].arg != r.arg {
			return nil, fmt.Errorf("rule filter off: operator %d does not match the configuration", k)
		}
		compiled[i] = ops[k].op
		k++
	}
	if k != len(ops) {
		return nil, fmt.Errorf("rule filter off: %d operators compiled, %d read", len(ops), k)
	}
	protected := skipCounted(cfg)
	f := &ruleFilter{}
	for i, r := range cfg.rules {
		if r.kind != secRuleKind || r.child || r.broken || r.negated || r.id <= 0 ||
			protected[i] || cfg.updated[r.id] || cfg.removed[r.id] || (r.phase != 1 && r.phase != 2) {
			continue
		}
		fr, ok := filterFor(r, compiled[i])
		if !ok {
			continue
		}
		for _, t := range fr.targets {
			fr.tix = append(fr.tix, f.intern(t))
		}
		if r.phase == 1 {
			f.phase1 = append(f.phase1, fr)
		} else {
			f.phase2 = append(f.phase2, fr)
		}
	}
	return f, nil
}

// intern returns t's index in f.targets, adding it when new.
func (f *ruleFilter) intern(t target) int {
	for i, have := range f.targets {
		if have == t {
			return i
		}
	}
	f.targets = append(f.targets, t)
	return len(f.targets) - 1
}

func filterFor(r secRule, op plugintypes.Operator) (filterRule, bool) {
	fr := filterRule{id: r.id}
	switch o := op.(type) {
	case *rx:
		fr.kind, fr.rx = opRx, o
	case *binaryRx:
		fr.kind, fr.brx = opBinaryRx, o
	case *pm:
		fr.kind, fr.pm = opPM, o
	default:
		switch r.op {
		case "detectsqli":
			fr.kind = opSQLi
		case "detectxss":
			fr.kind = opXSS
		case "validatebyterange":
			valid, ok := byteRanges(r.arg)
			if !ok {
				return fr, false
			}
			fr.kind, fr.valid = opByteRange, valid
		default:
			return fr, false
		}
	}
	for _, t := range r.trans {
		st, ok := steps[t]
		if !ok {
			return fr, false
		}
		fr.trans = append(fr.trans, st)
		fr.ident = fr.ident.or(st.ident).or(st.trig)
	}
	for _, v := range splitVars(r.vars) {
		if v == "" {
			return fr, false
		}
		if v[0] == '!' {
			continue // an exception only narrows what the rule sees
		}
		count := v[0] == '&'
		if count {
			v = v[1:]
		}
		name, key, _ := cutVarName(v)
		rv, err := variables.Parse(name)
		if err != nil {
			return fr, false
		}
		if p, ok := stableVars[rv]; !ok || p > r.phase {
			return fr, false
		}
		t := target{v: rv, count: count}
		// A plain key selects as Coraza does (FindString); a key with a
		// "/" (Coraza starts a regular expression at any "/") or a quote
		// stands for the whole collection, a superset of what it selects.
		if key != "" && !count && !strings.ContainsAny(key, "/'") {
			t.key = key
		}
		fr.targets = append(fr.targets, t)
	}
	return fr, len(fr.targets) > 0
}

// byteRanges reads @validateByteRange's argument ("1-255", "9,10,32-126")
// as Coraza does, keeping the ASCII part; false when it does not read.
func byteRanges(arg string) (byteSet, bool) {
	var valid byteSet
	if arg == "" {
		return valid, false
	}
	for _, br := range strings.Split(arg, ",") {
		lo, hi, isRange := strings.Cut(strings.TrimSpace(br), "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 || a > 255 {
			return valid, false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < 0 || b > 255 {
				return valid, false
			}
		}
		for c := a; c <= b && c < 0x80; c++ {
			valid = valid.or(bit(byte(c)))
		}
	}
	return valid, true
}

func cutVarName(v string) (name, key string, hasKey bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == ':' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}
