package waf

import (
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/corazawaf/coraza/v3/experimental/plugins"
	"github.com/corazawaf/coraza/v3/experimental/plugins/plugintypes"
	"github.com/corazawaf/coraza/v3/types/variables"
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

// filters holds each compiled rule set's filter by key; the key is
// allocated before compilation and the filter stored after it.
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
	s := scratchPool.Get().(*valueSets)
	s.reset()
	removed := 0
	for i := range rules {
		if !rules[i].mayMatch(tx, s) {
			rm.RemoveRuleByID(rules[i].id)
			removed++
		}
	}
	scratchPool.Put(s)
	if observeFilter != nil {
		observeFilter(r.ID(), removed)
	}
}

// observeFilter, when set (by tests), learns how many rules each run of
// the filter removed.
var observeFilter func(filterRuleID, removed int)

// ruleFilter is one rule set's removable rules by phase.
type ruleFilter struct {
	phase1, phase2 []filterRule
}

// filterRule is a removable rule.
type filterRule struct {
	id      int
	targets []target
	trans   []closure
	alpha   *alphabet
}

type target struct {
	v     variables.RuleVariable
	count bool // &VAR: the rule sees the number of values
}

// mayMatch reports whether the rule may match some value of the request:
// false only when it cannot.
func (fr *filterRule) mayMatch(tx plugintypes.TransactionState, s *valueSets) bool {
	for _, t := range fr.targets {
		var sets []byteSet
		if t.count {
			sets = countSets[:]
		} else {
			vs, ok := s.of(tx, t.v)
			if !ok {
				return true
			}
			sets = vs
		}
		for _, set := range sets {
			set, ok := closeOver(set, fr.trans)
			if !ok || fr.alpha.mayMatch(set) {
				return true
			}
		}
	}
	return false
}

// countSets is the byte set of a count ("0"–"9", widened as alphabetOf
// widens digits).
var countSets = [1]byteSet{{digits, 0}}

// maxSets bounds the distinct byte sets kept per collection; past it the
// sets are merged into their union (still sound: a pattern that cannot
// match over the union cannot match over any part of it).
const maxSets = 16

// valueSets caches, per collection, the distinct byte sets of its values
// for one run of the filter.
type valueSets struct {
	done  [256]bool
	ascii [256]bool
	sets  [256][]byteSet
}

var scratchPool = sync.Pool{New: func() any { return new(valueSets) }}

func (s *valueSets) reset() {
	for i := range s.done {
		if s.done[i] {
			s.done[i] = false
			s.sets[i] = s.sets[i][:0]
		}
	}
}

// of returns the distinct byte sets of v's values, or false when a value
// has a byte of 0x80 or more or the collection is unknown.
func (s *valueSets) of(tx plugintypes.TransactionState, v variables.RuleVariable) ([]byteSet, bool) {
	if s.done[v] {
		return s.sets[v], s.ascii[v]
	}
	s.done[v] = true
	s.ascii[v] = false
	col := tx.Collection(v)
	if col == nil {
		return nil, false
	}
	sets := s.sets[v][:0]
	for _, md := range col.FindAll() {
		set, ascii := alphabetOf(md.Value())
		if !ascii {
			s.sets[v] = sets
			return nil, false
		}
		sets = addSet(sets, set)
	}
	s.sets[v] = sets
	s.ascii[v] = true
	return sets, true
}

func addSet(sets []byteSet, set byteSet) []byteSet {
	for _, have := range sets {
		if have == set {
			return sets
		}
	}
	if len(sets) < maxSets {
		return append(sets, set)
	}
	u := set
	for _, have := range sets {
		u[0] |= have[0]
		u[1] |= have[1]
	}
	return append(sets[:0], u)
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

// closure is a transformation's effect on a byte set: a superset of the
// bytes of t(v) for every ASCII v over the set, and of the set itself;
// false when the result may hold any byte.
type closure func(byteSet) (byteSet, bool)

func closeOver(set byteSet, trans []closure) (byteSet, bool) {
	for _, c := range trans {
		var ok bool
		if set, ok = c(set); !ok {
			return set, false
		}
	}
	return set, true
}

func bit(c byte) byteSet {
	var b byteSet
	b[c>>6] |= 1 << (c & 63)
	return b
}

func (b byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

func (b byteSet) or(o byteSet) byteSet { return byteSet{b[0] | o[0], b[1] | o[1]} }

var (
	upper = func() byteSet {
		var b byteSet
		for c := byte('A'); c <= 'Z'; c++ {
			b = b.or(bit(c))
		}
		return b
	}()
	space = bit(' ')
)

// lowerOf adds the lower-case form of the set's upper-case letters.
func lowerOf(b byteSet) byteSet {
	u := b[1] & upper[1] // 'A'..'Z' are bits 1..26 of word 1
	return byteSet{b[0], b[1] | u<<32}
}

func same(b byteSet) (byteSet, bool) { return b, true }

// decodes is a decoding transformation: the set when it has none of the
// bytes that start an escape, else anything.
func decodes(starts ...byte) closure {
	return func(b byteSet) (byteSet, bool) {
		for _, c := range starts {
			if b.has(c) {
				return b, false
			}
		}
		return b, true
	}
}

func adds(extra byteSet) closure {
	return func(b byteSet) (byteSet, bool) { return b.or(extra), true }
}

// closures are the transformations whose effect the filter knows; a rule
// with any other is never filtered.
var closures = map[string]closure{
	"none":               same,
	"lowercase":          func(b byteSet) (byteSet, bool) { return lowerOf(b), true },
	"urldecode":          decodes('%', '+'),
	"urldecodeuni":       decodes('%', '+'),
	"htmlentitydecode":   decodes('&'),
	"jsdecode":           decodes('\\'),
	"cssdecode":          decodes('\\'),
	"escapeseqdecode":    decodes('\\'),
	"utf8tounicode":      same, // changes only bytes of 0x80 or more
	"removenulls":        same,
	"removewhitespace":   same,
	"removecomments":     adds(space.or(bit(0))), // its end pad can leak out as NUL
	"removecommentschar": same,
	"trim":               same,
	"trimleft":           same,
	"trimright":          same,
	"normalisepath":      same,
	"normalizepath":      same,
	"normalisepathwin":   adds(bit('/')),
	"normalizepathwin":   adds(bit('/')),
	"compresswhitespace": adds(space),
	"replacecomments":    adds(space),
	"replacenulls":       adds(space),
	"cmdline":            func(b byteSet) (byteSet, bool) { return lowerOf(b).or(space), true },
}

// buildFilter picks the removable rules of cfg. rxs are the @rx operators
// Coraza created, in order; they must be the @rx rules of cfg one for
// one, or nothing is filtered.
func buildFilter(cfg *secConfig, rxs []rxRecord) (*ruleFilter, error) {
	if cfg.unsafe != "" {
		return nil, fmt.Errorf("rule filter off: %s", cfg.unsafe)
	}
	// Pair each rule with the operator Coraza compiled for it.
	alphas := make([]*alphabet, len(cfg.rules))
	k := 0
	for i, r := range cfg.rules {
		if r.kind != secRuleKind || r.op != "rx" {
			continue
		}
		if k >= len(rxs) || rxs[k].arg != r.arg {
			return nil, fmt.Errorf("rule filter off: @rx operator %d does not match the configuration", k)
		}
		alphas[i] = rxs[k].alpha
		k++
	}
	if k != len(rxs) {
		return nil, fmt.Errorf("rule filter off: %d @rx operators compiled, %d read", len(rxs), k)
	}
	// Rules a skip:N counts stay: removing one would make the skip
	// count another.
	protected := map[int]bool{}
	for i, r := range cfg.rules {
		if r.skip == 0 || r.child {
			continue
		}
		left := r.skip
		for j := i + 1; j < len(cfg.rules) && left > 0; j++ {
			if cfg.rules[j].child || cfg.rules[j].phase != r.phase {
				continue
			}
			protected[j] = true
			left--
		}
	}
	f := &ruleFilter{}
	for i, r := range cfg.rules {
		if r.kind != secRuleKind || r.child || r.broken || r.negated || r.id <= 0 ||
			alphas[i] == nil || protected[i] || cfg.updated[r.id] || cfg.removed[r.id] || (r.phase != 1 && r.phase != 2) {
			continue
		}
		fr, ok := filterFor(r, alphas[i])
		if !ok {
			continue
		}
		if r.phase == 1 {
			f.phase1 = append(f.phase1, fr)
		} else {
			f.phase2 = append(f.phase2, fr)
		}
	}
	return f, nil
}

func filterFor(r secRule, alpha *alphabet) (filterRule, bool) {
	fr := filterRule{id: r.id, alpha: alpha}
	for _, t := range r.trans {
		c, ok := closures[t]
		if !ok {
			return fr, false
		}
		fr.trans = append(fr.trans, c)
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
		name, _, _ := cutVarName(v)
		rv, err := variables.Parse(name)
		if err != nil {
			return fr, false
		}
		if p, ok := stableVars[rv]; !ok || p > r.phase {
			return fr, false
		}
		fr.targets = append(fr.targets, target{v: rv, count: count})
	}
	return fr, len(fr.targets) > 0
}

func cutVarName(v string) (name, key string, hasKey bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == ':' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}
