package waf

import (
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
// setting and the CRS's defaults for unset levels.
var paranoiaDefaults = map[int]bool{900000: true, 901120: true, 901125: true}

// deadRules returns the ids of the rules that never run at detection
// paranoia level pl (guards included), or nil when pruning is off.
func deadRules(cfg *secConfig, pl int) []int {
	if cfg.unsafe != "" || cfg.removesByTag {
		return nil
	}
	var ctls []string
	for _, r := range cfg.rules {
		if r.paranoia && !paranoiaDefaults[r.id] {
			return nil
		}
		ctls = append(ctls, r.ctl...)
	}
	dead := map[int]bool{}
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
		if cfg.removed[g.id] || cfg.updated[g.id] || g.hasMsg {
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
		if !removalsSpare(ctls, g, skipped, cfg) {
			return nil
		}
		kill(g.id)
		for _, j := range skipped {
			kill(cfg.rules[j].id)
		}
	}
	// A removed rule must not be one a skip:N counts.
	for i := range skipCounted(cfg) {
		if dead[cfg.rules[i].id] {
			return nil
		}
	}
	return order
}

// skipCounted returns the indexes of the rules a skip:N action counts:
// the N rules after it that its phase evaluates (its own phase's and the
// markers, which every phase sees). Removing one would make the skip
// count another.
func skipCounted(cfg *secConfig) map[int]bool {
	counted := map[int]bool{}
	for i, r := range cfg.rules {
		if r.skip == 0 || r.child {
			continue
		}
		left := r.skip
		for j := i + 1; j < len(cfg.rules) && left > 0; j++ {
			c := cfg.rules[j]
			if c.child || c.kind != secMarkerKind && c.phase != r.phase {
				continue
			}
			counted[j] = true
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

// removalsSpare reports whether no ctl action can remove guard g while
// keeping a rule it skips: no removal by its id, and a removal by tag
// only of a tag every skipped rule carries too.
func removalsSpare(ctls []string, g secRule, skipped []int, cfg *secConfig) bool {
	for _, c := range ctls {
		kind, arg, _ := strings.Cut(c, "=")
		switch strings.ToLower(strings.TrimSpace(kind)) {
		case "ruleremovebyid":
			ids := map[int]bool{}
			probe := &secConfig{}
			probe.markIDs(arg, ids)
			if probe.unsafe != "" || ids[g.id] {
				return false
			}
		case "ruleremovebytag":
			tag := strings.TrimSpace(arg)
			if !hasTag(g, tag) {
				continue
			}
			for _, j := range skipped {
				if !hasTag(cfg.rules[j], tag) {
					return false
				}
			}
		case "ruleremovebymsg":
			// guards have no msg
		}
	}
	return true
}

func hasTag(r secRule, tag string) bool {
	for _, t := range r.tags {
		if t == tag {
			return true
		}
	}
	return false
}
