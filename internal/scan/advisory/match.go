package advisory

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/google/osv-scalibr/semantic"
	"github.com/package-url/packageurl-go"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// query is one package as the database sees it.
type query struct {
	pkg     *report.Package
	eco     string // base ecosystem
	release string // OS release, for OS packages
	name    string // normalised name the advisories use
	version string
}

// candidate is one stored affected row.
type candidate struct {
	id      string
	release string
	raw     string
	spec    *affectedSpec
	sev     severity
}

// hit is one advisory affecting one package.
type hit struct {
	id    string
	sev   severity
	fixed string
}

// advisoryInfo is what a finding shows of an advisory.
type advisoryInfo struct {
	summary, details string
	aliases, refs    []string
}

// Match returns one finding per vulnerability affecting a package, per
// location (manifest or lockfile) the package was found in.
//
// A package matches an advisory's affected entry when the base ecosystems
// and names are equal (see normalizeName; Debian and Alpine packages match
// on the source package named in their purl, as their advisories do) and,
// for OS packages, the releases agree. Its version is then tested against
// the explicit versions list and every SEMVER and ECOSYSTEM range (see
// affects). Withdrawn advisories are skipped. Advisories that affect the
// same package and share an id or alias become one finding (see
// primaryID). Packages without a version are skipped: no range can be
// evaluated for them.
func (db *DB) Match(ctx context.Context, pkgs []report.Package) ([]report.Finding, error) {
	queries := make([]query, 0, len(pkgs))
	names := map[string]map[string]bool{} // ecosystem → names
	for i := range pkgs {
		q, ok := queryOf(&pkgs[i])
		if !ok {
			continue
		}
		queries = append(queries, q)
		if names[q.eco] == nil {
			names[q.eco] = map[string]bool{}
		}
		names[q.eco][q.name] = true
	}
	cands, err := db.candidates(ctx, names)
	if err != nil {
		return nil, err
	}

	hits := make([][]hit, len(queries))
	ids := map[string]bool{}
	for qi, q := range queries {
		byID := map[string]int{}
		for _, c := range cands[q.eco+"\x00"+q.name] {
			if !releaseMatches(q.release, c.release) {
				continue
			}
			if c.spec == nil {
				c.spec = &affectedSpec{}
				if err := json.Unmarshal([]byte(c.raw), c.spec); err != nil {
					return nil, fmt.Errorf("advisory %s: stored ranges unreadable: %w", c.id, err)
				}
			}
			ok, fixed := affects(q.eco, *c.spec, q.version)
			if !ok {
				continue
			}
			if i, seen := byID[c.id]; seen {
				h := &hits[qi][i]
				if worse(c.sev, h.sev) {
					h.sev = c.sev
				}
				if fixed != "" && (h.fixed == "" || compareVersions(q.eco, fixed, h.fixed) < 0) {
					h.fixed = fixed
				}
				continue
			}
			byID[c.id] = len(hits[qi])
			hits[qi] = append(hits[qi], hit{id: c.id, sev: c.sev, fixed: fixed})
			ids[c.id] = true
		}
	}
	info, err := db.advisoryInfo(ctx, ids)
	if err != nil {
		return nil, err
	}

	var out []report.Finding
	for qi, q := range queries {
		for _, group := range mergeAliases(hits[qi], info) {
			out = append(out, findings(q, group, info)...)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Location.Path != b.Location.Path {
			return a.Location.Path < b.Location.Path
		}
		if a.Vuln.Package.Name != b.Vuln.Package.Name {
			return a.Vuln.Package.Name < b.Vuln.Package.Name
		}
		if a.Vuln.Package.Version != b.Vuln.Package.Version {
			return a.Vuln.Package.Version < b.Vuln.Package.Version
		}
		return a.RuleID < b.RuleID
	})
	return out, nil
}

// rhelFamily are the ecosystems whose advisories write RPM epochs into
// versions ("1:2.3-4"); purls carry the epoch as a qualifier.
var rhelFamily = map[string]bool{"Red Hat": true, "AlmaLinux": true, "Rocky Linux": true}

// queryOf derives the database key of a package.
func queryOf(p *report.Package) (query, bool) {
	if p.Version == "" || p.Ecosystem == "" || p.Name == "" {
		return query{}, false
	}
	eco, release := splitEcosystem(p.Ecosystem)
	q := query{pkg: p, eco: eco, release: release, name: p.Name, version: p.Version}
	if p.PURL != "" {
		if pu, err := packageurl.FromString(p.PURL); err == nil {
			qs := pu.Qualifiers.Map()
			switch pu.Type {
			case "deb":
				if s := qs["source"]; s != "" {
					q.name = s
				}
			case "apk":
				if s := qs["origin"]; s != "" {
					q.name = s
				}
			case "rpm":
				if e := qs["epoch"]; e != "" && e != "0" && rhelFamily[eco] && !strings.Contains(q.version, ":") {
					q.version = e + ":" + q.version
				}
			}
		}
	}
	if eco == "Go" && q.name == "go" {
		q.name = "stdlib"
	}
	q.name = normalizeName(eco, q.name)
	return q, true
}

// releaseMatches says whether an advisory for OS release row applies to a
// package from release pkg. Either side may be unknown (empty); releases
// with more detail ("22.04:LTS") match their prefix ("22.04").
func releaseMatches(pkg, row string) bool {
	if pkg == "" || row == "" || pkg == row {
		return true
	}
	return strings.HasPrefix(row, pkg+":") || strings.HasPrefix(pkg, row+":")
}

// candidates loads the affected rows of every named package, keyed by
// ecosystem NUL name.
func (db *DB) candidates(ctx context.Context, names map[string]map[string]bool) (map[string][]*candidate, error) {
	out := map[string][]*candidate{}
	for eco, set := range names {
		list := make([]string, 0, len(set))
		for n := range set {
			list = append(list, n)
		}
		sort.Strings(list)
		for chunk := range chunks(list, 500) {
			args := make([]any, 0, len(chunk)+1)
			args = append(args, eco)
			for _, n := range chunk {
				args = append(args, n)
			}
			rows, err := db.st.Query(ctx, `SELECT f.advisory_id, f.release, f.name, f.affected, f.severity, f.cvss_vector, f.cvss_score
				FROM advisory_affected f JOIN advisory a ON a.id = f.advisory_id
				WHERE a.withdrawn = 0 AND f.ecosystem = ? AND f.name IN (`+placeholders(len(chunk), 1)+`)`, args...)
			if err != nil {
				return nil, err
			}
			for rows.Next() {
				c := &candidate{}
				var name string
				var level int
				if err := rows.Scan(&c.id, &c.release, &name, &c.raw, &level, &c.sev.Vector, &c.sev.Score); err != nil {
					rows.Close()
					return nil, err
				}
				c.sev.Level = report.Severity(level)
				k := eco + "\x00" + name
				out[k] = append(out[k], c)
			}
			if err := rows.Close(); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// advisoryInfo loads summaries, aliases and references of the given
// advisories.
func (db *DB) advisoryInfo(ctx context.Context, ids map[string]bool) (map[string]*advisoryInfo, error) {
	out := map[string]*advisoryInfo{}
	list := make([]string, 0, len(ids))
	for id := range ids {
		list = append(list, id)
	}
	sort.Strings(list)
	for chunk := range chunks(list, 500) {
		args := make([]any, len(chunk))
		for i, id := range chunk {
			args[i] = id
		}
		rows, err := db.st.Query(ctx, "SELECT id, summary, details, aliases, refs FROM advisory WHERE id IN ("+placeholders(len(chunk), 1)+")", args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var id, aliases, refs string
			a := &advisoryInfo{}
			if err := rows.Scan(&id, &a.summary, &a.details, &aliases, &refs); err != nil {
				rows.Close()
				return nil, err
			}
			if err := json.Unmarshal([]byte(aliases), &a.aliases); err != nil {
				rows.Close()
				return nil, fmt.Errorf("advisory %s: stored aliases unreadable: %w", id, err)
			}
			if err := json.Unmarshal([]byte(refs), &a.refs); err != nil {
				rows.Close()
				return nil, fmt.Errorf("advisory %s: stored references unreadable: %w", id, err)
			}
			out[id] = a
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mergeAliases groups the advisories affecting one package that describe
// the same vulnerability: two advisories belong together when one names
// the other as an alias or both name a common alias (a CVE, say).
func mergeAliases(hits []hit, info map[string]*advisoryInfo) [][]hit {
	parent := make([]int, len(hits))
	for i := range parent {
		parent[i] = i
	}
	var find func(int) int
	find = func(i int) int {
		for parent[i] != i {
			parent[i] = parent[parent[i]]
			i = parent[i]
		}
		return i
	}
	owner := map[string]int{}
	for i, h := range hits {
		keys := []string{h.id}
		if a := info[h.id]; a != nil {
			keys = append(keys, a.aliases...)
		}
		for _, k := range keys {
			if j, ok := owner[k]; ok {
				parent[find(i)] = find(j)
			} else {
				owner[k] = i
			}
		}
	}
	groups := map[int][]hit{}
	var roots []int
	for i, h := range hits {
		r := find(i)
		if groups[r] == nil {
			roots = append(roots, r)
		}
		groups[r] = append(groups[r], h)
	}
	out := make([][]hit, 0, len(roots))
	for _, r := range roots {
		out = append(out, groups[r])
	}
	return out
}

// nativePrefixes are the id prefixes of each ecosystem's own advisory
// database.
var nativePrefixes = map[string][]string{
	"Go":          {"GO-"},
	"PyPI":        {"PYSEC-"},
	"crates.io":   {"RUSTSEC-"},
	"Debian":      {"DSA-", "DLA-", "DTSA-", "DEBIAN-"},
	"Ubuntu":      {"USN-", "UBUNTU-"},
	"Alpine":      {"ALPINE-"},
	"Red Hat":     {"RHSA-", "RHBA-", "RHEA-"},
	"AlmaLinux":   {"ALSA-", "ALBA-", "ALEA-"},
	"Rocky Linux": {"RLSA-", "RXSA-"},
	"RubyGems":    {"GHSA-"},
	"npm":         {"GHSA-"},
	"Maven":       {"GHSA-"},
	"NuGet":       {"GHSA-"},
	"Packagist":   {"GHSA-"},
}

// idRank orders candidate primary ids, lowest first: the ecosystem's own
// database (GO- for Go, PYSEC- for PyPI, RUSTSEC- for crates.io, DSA-/DLA-
// for Debian, …; GitHub's GHSA- for the registries without one), then
// GHSA-, then any other database id, then CVE- ids.
func idRank(eco, id string) int {
	for _, p := range nativePrefixes[eco] {
		if strings.HasPrefix(id, p) {
			return 0
		}
	}
	switch {
	case strings.HasPrefix(id, "GHSA-"):
		return 1
	case strings.HasPrefix(id, "CVE-"):
		return 3
	}
	return 2
}

// primaryID picks the id a merged finding is reported under: the lowest
// idRank among the merged advisories, ties broken by the smaller id.
func primaryID(eco string, group []hit) string {
	best := group[0].id
	for _, h := range group[1:] {
		rb, rh := idRank(eco, best), idRank(eco, h.id)
		if rh < rb || (rh == rb && h.id < best) {
			best = h.id
		}
	}
	return best
}

// worse says whether a is a worse rating than b.
func worse(a, b severity) bool {
	if a.Level != b.Level {
		return a.Level > b.Level
	}
	return a.Score > b.Score
}

// findings turns one merged group into a finding per location of the
// package.
func findings(q query, group []hit, info map[string]*advisoryInfo) []report.Finding {
	id := primaryID(q.eco, group)
	sort.SliceStable(group, func(i, j int) bool {
		if group[i].id == id || group[j].id == id {
			return group[i].id == id
		}
		ri, rj := idRank(q.eco, group[i].id), idRank(q.eco, group[j].id)
		if ri != rj {
			return ri < rj
		}
		return group[i].id < group[j].id
	})
	sev := group[0].sev
	fixed := ""
	var summary, details string
	aliasSet := map[string]bool{}
	var refs []string
	refSeen := map[string]bool{}
	for _, h := range group {
		if worse(h.sev, sev) {
			sev = h.sev
		}
		// The version that fixes every merged advisory.
		if h.fixed != "" && (fixed == "" || compareVersions(q.eco, h.fixed, fixed) > 0) {
			fixed = h.fixed
		}
		aliasSet[h.id] = true
		a := info[h.id]
		if a == nil {
			continue
		}
		if summary == "" {
			summary = a.summary
		}
		if details == "" {
			details = a.details
		}
		for _, al := range a.aliases {
			aliasSet[al] = true
		}
		for _, r := range a.refs {
			if !refSeen[r] {
				refSeen[r] = true
				refs = append(refs, r)
			}
		}
	}
	delete(aliasSet, id)
	aliases := make([]string, 0, len(aliasSet))
	for a := range aliasSet {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	title := summary
	if title == "" {
		title = id
	}
	remediation := "No fixed version is known."
	if fixed != "" {
		remediation = fmt.Sprintf("Upgrade %s to %s or later.", q.pkg.Name, fixed)
	}
	paths := q.pkg.Locations
	if len(paths) == 0 {
		paths = []string{""}
	}
	out := make([]report.Finding, 0, len(paths))
	for _, path := range paths {
		pkg := *q.pkg
		pkg.Locations = nil
		if path != "" {
			pkg.Locations = []string{path}
		}
		out = append(out, report.Finding{
			Kind:        report.KindVulnerability,
			RuleID:      id,
			Title:       title,
			Severity:    sev.Level,
			Location:    report.Location{Path: path},
			Fingerprint: report.Fingerprint(string(report.KindVulnerability), id, q.pkg.Ecosystem, q.pkg.Name, q.pkg.Version, path),
			Description: details,
			Remediation: remediation,
			Vuln: &report.Vulnerability{
				Package:      pkg,
				ID:           id,
				Aliases:      aliases,
				Summary:      summary,
				FixedVersion: fixed,
				CVSSVector:   sev.Vector,
				CVSSScore:    sev.Score,
				References:   refs,
			},
		})
	}
	return out
}

// parseVersion parses v under the ordering of a range type: SEMVER ranges
// use Semantic Versioning 2.0 whatever the ecosystem, ECOSYSTEM ranges the
// ecosystem's own rules (osv-scalibr's semantic package).
func parseVersion(rangeType, eco, v string) (semantic.Version, error) {
	if rangeType == "SEMVER" {
		return semantic.ParseSemverVersion(strings.TrimPrefix(v, "v")), nil
	}
	return semantic.Parse(v, eco)
}

// compareVersions orders two versions of an ecosystem, falling back to
// string order when they do not parse.
func compareVersions(eco, a, b string) int {
	va, err := semantic.Parse(a, eco)
	if err == nil {
		if c, err := va.CompareStr(b); err == nil {
			return c
		}
	}
	return strings.Compare(a, b)
}

type parsedEvent struct {
	event
	v    semantic.Version // nil for introduced "0"
	zero bool
}

func (e parsedEvent) version() string {
	switch {
	case e.Introduced != "":
		return e.Introduced
	case e.Fixed != "":
		return e.Fixed
	case e.LastAffected != "":
		return e.LastAffected
	}
	return e.Limit
}

// affects reports whether version v of a package in base ecosystem eco
// lies in spec, and the lowest fixed version above v.
//
// It follows the OSV evaluation rules: v is affected when it equals an
// entry of the versions list, or when some range contains it. Within a
// range the events are sorted by version ("introduced": "0" first) and
// walked in order: an introduced at or below v makes v affected, a fixed
// at or below v or a last_affected below v makes it unaffected again.
// Limit events bound the range from above: when a range has any, v must
// lie below one of them ("*" is no bound). Events whose version does not
// parse under the range's ordering are ignored.
func affects(eco string, spec affectedSpec, v string) (bool, string) {
	hitList := false
	for _, lv := range spec.Versions {
		if lv == v {
			hitList = true
			break
		}
		if pv, err := semantic.Parse(v, eco); err == nil {
			if c, err := pv.CompareStr(lv); err == nil && c == 0 {
				hitList = true
				break
			}
		}
	}
	hitRange := false
	fixed := ""
	var fixedV semantic.Version
	var allFixes []parsedEvent
	for _, r := range spec.Ranges {
		iv, err := parseVersion(r.Type, eco, v)
		if err != nil {
			continue
		}
		evs := make([]parsedEvent, 0, len(r.Events))
		for _, e := range r.Events {
			pe := parsedEvent{event: e}
			s := pe.version()
			if e.Introduced == "0" {
				pe.zero = true
			} else if e.Limit == "*" {
				// no upper bound
			} else {
				pv, err := parseVersion(r.Type, eco, s)
				if err != nil {
					continue
				}
				pe.v = pv
			}
			evs = append(evs, pe)
		}
		sort.SliceStable(evs, func(i, j int) bool {
			a, b := evs[i], evs[j]
			if a.zero || b.zero {
				return a.zero && !b.zero
			}
			if a.v == nil || b.v == nil {
				return a.v != nil && b.v == nil // "*" limits last
			}
			c, err := a.v.Compare(b.v)
			return err == nil && c < 0
		})
		affected := false
		limited, belowLimit := false, false
		for _, e := range evs {
			var c int // sign of v - e
			if e.v != nil {
				c, err = iv.Compare(e.v)
				if err != nil {
					continue
				}
			}
			switch {
			case e.Introduced != "":
				if e.zero || c >= 0 {
					affected = true
				}
			case e.Fixed != "":
				if c >= 0 {
					affected = false
				}
				if c < 0 {
					allFixes = append(allFixes, e)
				}
			case e.LastAffected != "":
				if c > 0 {
					affected = false
				}
			case e.Limit != "":
				limited = true
				if e.v == nil || c < 0 {
					belowLimit = true
				}
			}
		}
		if limited && !belowLimit {
			affected = false
		}
		if !affected {
			continue
		}
		hitRange = true
		// The lowest fixed event above v in this range.
		for _, e := range evs {
			if e.Fixed == "" || e.v == nil {
				continue
			}
			if c, err := iv.Compare(e.v); err != nil || c >= 0 {
				continue
			}
			if fixedV == nil {
				fixed, fixedV = e.Fixed, e.v
			} else if c, err := e.v.Compare(fixedV); err == nil && c < 0 {
				fixed, fixedV = e.Fixed, e.v
			}
			break // events are sorted: the first fixed above v is the lowest
		}
	}
	if !hitRange && hitList {
		for _, e := range allFixes {
			if fixedV == nil {
				fixed, fixedV = e.Fixed, e.v
			} else if c, err := e.v.Compare(fixedV); err == nil && c < 0 {
				fixed, fixedV = e.Fixed, e.v
			}
		}
	}
	return hitRange || hitList, fixed
}
