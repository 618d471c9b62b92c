package secrets

import (
	"bytes"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Limits on the part of a long line that a ScopeLine regex sees around a
// keyword hit: minified files have lines of megabytes, and every secret
// our rules know is far shorter.
const (
	maxBefore = 512
	maxAfter  = 1024
)

// defaultRemediation is shown with findings of rules that give none.
const defaultRemediation = "Revoke or rotate this credential at its issuer, then remove it from the code " +
	"(and from history, which keeps it otherwise); load secrets from a vault or the environment instead."

// inlineAllow marks a line whose findings are dropped (gitleaks' marker
// is honoured too, so existing annotations keep working).
var inlineAllow = [][]byte{[]byte("rampart:allow"), []byte("gitleaks:allow")}

// Engine finds secrets in content. It is safe for concurrent use.
type Engine struct {
	rules    []Rule
	ac       *automaton
	kwRules  [][]int32 // keyword index → rules
	noKw     []int32   // rules without keywords (run over all content)
	pathOnly []int32   // rules without a regex
	scratch  sync.Pool
}

// New compiles rules into an Engine. Rule IDs must be unique.
func New(rules []Rule) (*Engine, error) {
	e := &Engine{rules: slices.Clone(rules)}
	seen := map[string]bool{}
	kwIndex := map[string]int32{}
	var keywords []string
	for i := range e.rules {
		r := &e.rules[i]
		if err := r.validate(); err != nil {
			return nil, err
		}
		if seen[r.ID] {
			return nil, fmt.Errorf("rule %s: defined twice", r.ID)
		}
		seen[r.ID] = true
		if r.Regex == nil {
			e.pathOnly = append(e.pathOnly, int32(i))
			continue
		}
		if len(r.Keywords) == 0 {
			e.noKw = append(e.noKw, int32(i))
			continue
		}
		for _, k := range r.Keywords {
			k = strings.Map(func(c rune) rune {
				if 'A' <= c && c <= 'Z' {
					return c + 'a' - 'A'
				}
				return c
			}, k)
			ki, ok := kwIndex[k]
			if !ok {
				ki = int32(len(keywords))
				kwIndex[k] = ki
				keywords = append(keywords, k)
				e.kwRules = append(e.kwRules, nil)
			}
			if !slices.Contains(e.kwRules[ki], int32(i)) {
				e.kwRules[ki] = append(e.kwRules[ki], int32(i))
			}
		}
	}
	e.ac = newAutomaton(keywords)
	e.scratch.New = func() any { return new(scratch) }
	return e, nil
}

// Rules returns the engine's rules.
func (e *Engine) Rules() []Rule { return slices.Clone(e.rules) }

// window is a part of the content one rule's regex runs over.
type window struct {
	rule       int32
	start, end int
}

// scratch is per-scan memory, pooled.
type scratch struct {
	wins    []window
	covered []int
}

// Scan returns the secrets in data, the content of the file at path
// (slash-separated, used in findings and by rules' path filters).
func (e *Engine) Scan(path string, data []byte) []report.Finding {
	f, _ := e.scan(path, data, report.Location{Path: path})
	return f
}

// scan is Scan with the file's location (commit, author, layer), which
// allowlists and findings use. It also returns, per finding, a key
// identifying the secret (see dedupKey).
func (e *Engine) scan(path string, data []byte, loc report.Location) ([]report.Finding, []string) {
	sc := e.scratch.Get().(*scratch)
	defer e.scratch.Put(sc)
	sc.wins = sc.wins[:0]

	// covered[r] is the end of rule r's latest window: hits inside it
	// need no window of their own.
	if cap(sc.covered) < len(e.rules) {
		sc.covered = make([]int, len(e.rules))
	}
	covered := sc.covered[:len(e.rules)]
	clear(covered)
	e.ac.scan(data, func(kw int32, end int) {
		for _, ri := range e.kwRules[kw] {
			r := &e.rules[ri]
			if end+r.Reach <= covered[ri] {
				continue
			}
			w := window{ri, 0, len(data)}
			if r.Scope == ScopeLine {
				w = lineWindow(data, ri, end-1, end, r.Reach)
			}
			covered[ri] = w.end
			sc.wins = append(sc.wins, w)
		}
	})
	for _, ri := range e.noKw {
		sc.wins = append(sc.wins, window{ri, 0, len(data)})
	}
	var found []match
	if len(sc.wins) > 0 {
		slices.SortFunc(sc.wins, func(a, b window) int {
			if a.rule != b.rule {
				return int(a.rule - b.rule)
			}
			return a.start - b.start
		})
		// Merge overlapping windows of one rule, then run its regex once
		// over each merged window.
		cur := sc.wins[0]
		applicable := e.applies(cur.rule, path, loc.Commit)
		flush := func(w window) {
			if applicable {
				found = e.matchWindow(found, data, w, path, loc.Commit)
			}
		}
		for _, w := range sc.wins[1:] {
			if w.rule == cur.rule && w.start <= cur.end {
				cur.end = max(cur.end, w.end)
				continue
			}
			flush(cur)
			if w.rule != cur.rule {
				applicable = e.applies(w.rule, path, loc.Commit)
			}
			cur = w
		}
		flush(cur)
	}
	for _, ri := range e.pathOnly {
		if e.applies(ri, path, loc.Commit) {
			found = append(found, match{rule: ri, start: -1})
		}
	}
	if len(found) == 0 {
		return nil, nil
	}
	return e.findings(found, data, loc)
}

// lineWindow returns the lines holding a keyword hit that ends at end,
// clipped on very long lines.
func lineWindow(data []byte, rule int32, hitEnd1, hitEnd, reach int) window {
	lo := max(0, hitEnd1-maxBefore)
	start := lo
	if i := bytes.LastIndexByte(data[lo:hitEnd1], '\n'); i >= 0 {
		start = lo + i + 1
	} else if lo > 0 {
		start = cutPoint(data, lo, hitEnd1)
	}
	from := min(len(data), hitEnd+reach)
	hi := min(len(data), from+maxAfter)
	end := hi
	if i := bytes.IndexByte(data[from:hi], '\n'); i >= 0 {
		end = from + i
	}
	if end < hitEnd {
		end = hitEnd
	}
	return window{rule, start, end}
}

// cutPoint moves a window start that falls inside a long line forward to
// just after a delimiter, so that word-boundary assertions at the start
// of the window are not fooled by a cut through a token.
func cutPoint(data []byte, lo, limit int) int {
	for i := lo; i < limit; i++ {
		switch data[i] {
		case ' ', '\t', '"', '\'', '`', ',', ';', '(', ')', '[', ']', '{', '}', '<', '>', '=':
			return i + 1
		}
	}
	return lo
}

// applies reports whether rule ri may report in the file at path.
func (e *Engine) applies(ri int32, path, commit string) bool {
	r := &e.rules[ri]
	if r.Path != nil && !r.Path.MatchString(path) {
		return false
	}
	for i := range r.Allowlists {
		a := &r.Allowlists[i]
		if a.fileLevel() && a.allowsFile(path, commit) {
			return false
		}
	}
	return true
}

// match is a candidate secret: rule, the secret's span and the match's.
type match struct {
	rule                 int32
	start, end           int // the secret
	mstart, mend         int // the whole match
	entropy              float64
	generic, overlapping bool
}

// matchWindow runs one rule over one window, appending accepted matches.
func (e *Engine) matchWindow(found []match, data []byte, w window, path, commit string) []match {
	r := &e.rules[w.rule]
	text := data[w.start:w.end]
	if r.quick != nil && !r.quick(text) {
		return found
	}
	for _, m := range r.Regex.FindAllSubmatchIndex(text, -1) {
		s, t := secretSpan(m, r.SecretGroup)
		if s < 0 || s == t {
			continue
		}
		s, t = s+w.start, t+w.start
		secret := data[s:t]
		ent := entropy(secret)
		if r.Entropy > 0 && ent <= r.Entropy {
			continue
		}
		if r.Check != nil && !r.Check(string(secret)) {
			continue
		}
		ls, le := lineBounds(data, m[0]+w.start, m[1]+w.start)
		line := data[ls:le]
		if hasInlineAllow(line) {
			continue
		}
		allowed := false
		for i := range r.Allowlists {
			a := &r.Allowlists[i]
			if a.fileLevel() {
				continue // decided in applies
			}
			if a.allows(path, commit, string(secret), string(data[m[0]+w.start:m[1]+w.start]), string(line)) {
				allowed = true
				break
			}
		}
		if allowed {
			continue
		}
		found = append(found, match{rule: w.rule, start: s, end: t, mstart: m[0] + w.start, mend: m[1] + w.start,
			entropy: ent, generic: r.Generic})
	}
	return found
}

// secretSpan picks the secret out of a submatch index list.
func secretSpan(m []int, group int) (int, int) {
	if group > 0 {
		if 2*group+1 < len(m) {
			return m[2*group], m[2*group+1]
		}
		return -1, -1
	}
	for g := 1; 2*g+1 < len(m); g++ {
		if m[2*g] >= 0 && m[2*g+1] > m[2*g] {
			return m[2*g], m[2*g+1]
		}
	}
	return m[0], m[1]
}

func hasInlineAllow(line []byte) bool {
	for _, mark := range inlineAllow {
		if bytes.Contains(line, mark) {
			return true
		}
	}
	return false
}

// lineBounds returns the start of the line holding s and the end of the
// line holding e-1.
func lineBounds(data []byte, s, e int) (int, int) {
	ls := bytes.LastIndexByte(data[:s], '\n') + 1
	le := len(data)
	if e < len(data) {
		if i := bytes.IndexByte(data[e:], '\n'); i >= 0 {
			le = e + i
		}
	}
	if e > 0 && e <= len(data) && data[e-1] == '\n' {
		le = e - 1
	}
	return ls, max(le, ls)
}

// findings turns accepted matches into findings: it drops duplicates and
// generic findings overlapping a specific one, and computes positions.
func (e *Engine) findings(found []match, data []byte, loc report.Location) ([]report.Finding, []string) {
	slices.SortFunc(found, func(a, b match) int {
		if a.start != b.start {
			return a.start - b.start
		}
		if a.generic != b.generic {
			if a.generic {
				return 1
			}
			return -1
		}
		return int(a.rule - b.rule)
	})
	// Drop generic matches overlapping a specific one.
	for i := range found {
		if !found[i].generic || found[i].start < 0 {
			continue
		}
		for j := range found {
			if found[j].generic || found[j].start < 0 {
				continue
			}
			if found[j].start < found[i].end && found[i].start < found[j].end {
				found[i].overlapping = true
				break
			}
		}
	}
	out := make([]report.Finding, 0, len(found))
	keys := make([]string, 0, len(found))
	line, lineStart, pos := 1, 0, 0
	var prev match
	for i, m := range found {
		if m.overlapping {
			continue
		}
		if i > 0 && m.rule == prev.rule && m.start == prev.start && m.end == prev.end {
			continue
		}
		prev = m
		r := &e.rules[m.rule]
		f := report.Finding{
			Kind:        report.KindSecret,
			RuleID:      r.ID,
			Title:       r.Description,
			Severity:    r.Severity,
			Location:    loc,
			Description: r.Description + " found in the code.",
			Remediation: r.Remediation,
		}
		if f.Remediation == "" {
			f.Remediation = defaultRemediation
		}
		if m.start < 0 { // path-only rule
			f.Description = r.Description + ": the file itself is sensitive."
			f.Fingerprint = report.Fingerprint("secret", r.ID, loc.Path, loc.Commit, loc.Layer)
			out = append(out, f)
			keys = append(keys, dedupKey(r.ID, loc.Path, nil))
			continue
		}
		// Positions: lines are counted forward from the previous finding.
		line += bytes.Count(data[pos:m.start], []byte{'\n'})
		if i := bytes.LastIndexByte(data[pos:m.start], '\n'); i >= 0 {
			lineStart = pos + i + 1
		}
		pos = m.start
		f.Location.StartLine = line
		f.Location.StartCol = utf8.RuneCount(data[lineStart:m.start]) + 1
		endLine := line + bytes.Count(data[m.start:m.end], []byte{'\n'})
		endLineStart := lineStart
		if i := bytes.LastIndexByte(data[m.start:m.end], '\n'); i >= 0 {
			endLineStart = m.start + i + 1
		}
		f.Location.EndLine = endLine
		f.Location.EndCol = utf8.RuneCount(data[endLineStart:m.end]) + 1
		secret := string(data[m.start:m.end])
		f.Secret = &report.Secret{Redacted: Redact(secret), Entropy: math.Round(m.entropy*100) / 100}
		f.Fingerprint = report.Fingerprint("secret", r.ID, loc.Path, loc.Commit, loc.Layer,
			strconv.Itoa(f.Location.StartLine), strconv.Itoa(f.Location.StartCol))
		out = append(out, f)
		keys = append(keys, dedupKey(r.ID, loc.Path, data[m.start:m.end]))
	}
	return out, keys
}

// Redact keeps at most the first four characters of a secret (fewer for
// short ones, a quarter of its length at most) and appends "…".
func Redact(secret string) string {
	n := min(4, utf8.RuneCountInString(secret)/4)
	i := 0
	for range n {
		_, size := utf8.DecodeRuneInString(secret[i:])
		i += size
	}
	return secret[:i] + "…"
}

// entropy returns the Shannon entropy of b in bits per byte.
func entropy(b []byte) float64 {
	if len(b) == 0 {
		return 0
	}
	var counts [256]int
	for _, c := range b {
		counts[c]++
	}
	n := float64(len(b))
	h := 0.0
	for _, c := range counts {
		if c > 0 {
			p := float64(c) / n
			h -= p * math.Log2(p)
		}
	}
	return h
}
