package waf

import (
	"slices"
	"strconv"
	"strings"
)

// Pruning: rules a rule set can never run. The CRS gates each file's
// rules by paranoia level with guard rules:
//
//	SecRule TX:DETECTION_PARANOIA_LEVEL "@lt 2" "id:920013,phase:1,pass,nolog,skipAfter:END-REQUEST-920-PROTOCOL-ENFORCEMENT"
//
// A rule set compiled for one paranoia level evaluates every guard on
// every request: at level 1 the "@lt 1" guards never match and the
// "@lt 2" guards always match and skip the rest of their file's phase.
// Coraza still walks them all, and each matching guard costs a match
// (MATCHED_VARS, the skipAfter action) — about a fifth of a benign GET.
// When the level is known and fixed, pruning takes out the guards and
// the rules an always-matching guard skips, with SecRuleRemoveById at the
// end of the configuration; the verdicts and logged matches are the same.
//
// The level is known when Rampart's own setting (rule 900000, before the
// CRS) is the only directive setting a paranoia level besides the CRS's
// defaults (901120, 901125, which only fill in unset levels). Pruning is
// off when anything could remove a guard without the rules it guards
// (SecRuleRemoveById of a guard, SecRuleRemoveBy{Tag,Msg}, a ctl removing
// a guard by id, or by a tag not every skipped rule has), when a guard's
// marker is missing, or when a rule it would take out is among those a
// skip:N action counts.

// paranoiaDefaults are the rules allowed to set a paranoia level: Rampart's
// setting and the CRS's defaults for unset levels. Pruning needs all three
// in place: without 901125 no detection level is set and no guard ever
// matches; without 900000 the CRS's default level 1 applies.
var paranoiaDefaults = []int{900000, 901120, 901125}

// deadRules returns the ids of the rules that never run at detection
// paranoia level pl (guards included), or nil when pruning is off.
func deadRules(cfg *secConfig, pl int) []int {
	if cfg.unsafe != "" || cfg.removesByTag {
		return nil
	}
	setters := map[int]int{} // id → index
	for i, r := range cfg.rules {
		if r.id > 0 && !r.child {
			for _, id := range paranoiaDefaults {
				if r.id == id {
					setters[id] = i
				}
			}
		}
		if r.paranoia && !slices.Contains(paranoiaDefaults, r.id) {
			return nil
		}
	}
	for _, id := range paranoiaDefaults {
		i, ok := setters[id]
		if !ok || cfg.removed[id] || cfg.updated[id] || cfg.retargeted[id] {
			return nil
		}
		// A ctl of a rule that can run first must not take it out or
		// narrow it: by id never, by tag only when that takes out every
		// rule pruning would (checked with the guards below).
		before := ctlRemovals(cfg.rules[:i])
		if before.bad || before.ids[id] || before.msg && cfg.rules[i].hasMsg ||
			before.targetIDs[id] || before.retargetsTagOf(cfg.rules[i]) {
			return nil
		}
		// Nothing that can run first may jump over it.
		for _, r := range cfg.rules[:i] {
			if r.skip > 0 || r.skipAfter != "" || r.allow {
				return nil
			}
		}
	}
	all := ctlRemovals(cfg.rules)
	if all.bad {
		return nil
	}
	dead := map[int]bool{}
	guards := map[int][]int{}  // guard id → indexes of the rules it skips
	guardedBy := map[int]int{} // skipped rule id → its guard
	var order []int
	kill := func(id int) {
		if !dead[id] {
			dead[id] = true
			order = append(order, id)
		}
	}
	for i, g := range cfg.rules {
		n, ok := guardLevel(g)
		if !ok {
			continue
		}
		if cfg.removed[g.id] || cfg.updated[g.id] || cfg.retargeted[g.id] || g.hasMsg ||
			all.ids[g.id] || all.targetIDs[g.id] || all.retargetsTagOf(g) {
			return nil
		}
		var skipped []int
		if pl < n {
			// The guard always matches: its phase's rules up to the
			// marker never run.
			j := i + 1
			for ; j < len(cfg.rules); j++ {
				r := cfg.rules[j]
				if r.kind == secMarkerKind && r.marker == g.skipAfter {
					break
				}
				if r.child || r.kind == secMarkerKind || r.phase != g.phase {
					continue
				}
				if r.id <= 0 {
					return nil
				}
				skipped = append(skipped, j)
			}
			if j == len(cfg.rules) {
				return nil
			}
		}
		// A tag removal that takes out the guard (or a paranoia setter)
		// must take out every rule the guard skips too.
		for tag := range all.tags {
			if !hasTag(g, tag) && !settersTagged(cfg, setters, tag) {
				continue
			}
			for _, j := range skipped {
				if !hasTag(cfg.rules[j], tag) {
					return nil
				}
			}
		}
		kill(g.id)
		for _, j := range skipped {
			kill(cfg.rules[j].id)
			guardedBy[cfg.rules[j].id] = g.id
		}
		guards[g.id] = skipped
	}
	// A removed rule must not be one a skip:N counts. A guard there
	// stays with the rules it skips (when the skip passes over the guard
	// they run); a skipped rule there keeps its guard and the guard's
	// other rules too.
	keep := map[int]bool{}
	for i := range skipCounted(cfg) {
		r := cfg.rules[i]
		if !dead[r.id] {
			continue
		}
		g := r.id
		if _, guard := guardLevel(r); !guard {
			g = guardedBy[r.id]
		}
		keep[g] = true
		for _, j := range guards[g] {
			keep[cfg.rules[j].id] = true
		}
	}
	if len(keep) > 0 {
		order = slices.DeleteFunc(order, func(id int) bool { return keep[id] })
	}
	return order
}

func settersTagged(cfg *secConfig, setters map[int]int, tag string) bool {
	for _, i := range setters {
		if hasTag(cfg.rules[i], tag) {
			return true
		}
	}
	return false
}

// removals is what the ctl actions of some rules can take out of a
// transaction at run time.
type removals struct {
	ids        map[int]bool    // ctl:ruleRemoveById
	tags       map[string]bool // ctl:ruleRemoveByTag
	msg        bool            // a ctl:ruleRemoveByMsg
	targetIDs  map[int]bool    // ctl:ruleRemoveTargetById
	targetTags map[string]bool // ctl:ruleRemoveTargetByTag
	targetMsg  bool
	bad        bool // a removal not understood (a macro, a bad id)
}

func ctlRemovals(rules []secRule) removals {
	rr := removals{ids: map[int]bool{}, tags: map[string]bool{}, targetIDs: map[int]bool{}, targetTags: map[string]bool{}}
	for _, r := range rules {
		for _, c := range r.ctl {
			kind, arg, _ := strings.Cut(c, "=")
			arg = strings.TrimSpace(arg)
			if strings.Contains(arg, "%{") {
				rr.bad = true
				continue
			}
			what, _, _ := strings.Cut(arg, ";")
			var err error
			switch strings.ToLower(strings.TrimSpace(kind)) {
			case "ruleremovebyid":
				err = addIDs(what, rr.ids)
			case "ruleremovebytag":
				rr.tags[what] = true
			case "ruleremovebymsg":
				rr.msg = true
			case "ruleremovetargetbyid":
				err = addIDs(what, rr.targetIDs)
			case "ruleremovetargetbytag":
				rr.targetTags[what] = true
			case "ruleremovetargetbymsg":
				rr.targetMsg = true
			}
			if err != nil || rr.ids[0] {
				rr.bad = true // id 0 is every marker: skipAfter would find none
			}
		}
	}
	return rr
}

// mayShift reports whether a ctl can take c out of a transaction while
// keeping the skip rule r (a removal taking out both changes no count).
func (rr removals) mayShift(c, r secRule) bool {
	if rr.bad || rr.ids[c.id] || rr.msg && c.hasMsg {
		return true
	}
	for _, t := range c.tags {
		if rr.tags[t] && !hasTag(r, t) {
			return true
		}
	}
	return false
}

// retargetsTagOf reports whether a ctl can take targets out of g by one of
// its tags or its message.
func (rr removals) retargetsTagOf(g secRule) bool {
	if rr.targetMsg && g.hasMsg {
		return true
	}
	for _, t := range g.tags {
		if rr.targetTags[t] {
			return true
		}
	}
	return false
}

// skipCounted returns the indexes of the rules a skip:N action may count:
// the N rules after it that its phase evaluates (its own phase's and the
// markers, which every phase sees), passing over rules SecRuleRemoveById
// took out and reaching one further for each a ctl may take out at run
// time. Removing one would make the skip count another.
func skipCounted(cfg *secConfig) map[int]bool {
	counted := map[int]bool{}
	rr := ctlRemovals(cfg.rules)
	for i, r := range cfg.rules {
		if r.skip == 0 || r.child || cfg.removed[r.id] {
			continue
		}
		left := r.skip
		for j := i + 1; j < len(cfg.rules) && left > 0; j++ {
			c := cfg.rules[j]
			if c.child || c.kind != secMarkerKind && c.phase != r.phase {
				continue
			}
			if c.kind != secMarkerKind && cfg.removed[c.id] {
				continue // not in the rule set: not counted
			}
			counted[j] = true
			if c.kind != secMarkerKind && rr.mayShift(c, r) {
				continue // may be gone at run time: the count may reach one further
			}
			left--
		}
	}
	return counted
}

// guardLevel returns N for a paranoia guard `TX:DETECTION_PARANOIA_LEVEL
// "@lt N"` with a skipAfter and nothing else that acts.
func guardLevel(r secRule) (int, bool) {
	if r.kind != secRuleKind || r.child || r.chain || r.negated || r.broken || r.op != "lt" ||
		!strings.EqualFold(r.vars, "TX:DETECTION_PARANOIA_LEVEL") || r.skipAfter == "" ||
		len(r.trans) > 0 || len(r.ctl) > 0 || r.paranoia || r.id <= 0 || r.phase < 1 {
		return 0, false
	}
	n, err := strconv.Atoi(r.arg)
	return n, err == nil
}

func hasTag(r secRule, tag string) bool {
	for _, t := range r.tags {
		if t == tag {
			return true
		}
	}
	return false
}
