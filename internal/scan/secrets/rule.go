package secrets

import (
	"fmt"
	"regexp"
	"strings"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// Rule describes one kind of secret.
type Rule struct {
	// ID names the rule in findings and suppressions (e.g.
	// "github-pat"); IDs are unique within an Engine.
	ID string
	// Description is a short title for findings ("GitHub personal
	// access token").
	Description string
	// Regex finds candidates (RE2 syntax). It may be nil for a path-only
	// rule, which reports every file whose path matches Path.
	Regex *regexp.Regexp
	// SecretGroup is the capture group holding the secret. Zero means the
	// first non-empty group, or the whole match if the regex has none.
	SecretGroup int
	// Keywords are case-insensitive literals of which at least one
	// appears in or just before every match. The engine looks for them
	// all in one pass and runs the regex only near their hits. A rule
	// without keywords runs its regex over all content.
	Keywords []string
	// Entropy, when positive, drops secrets whose Shannon entropy (bits
	// per byte) is at or below it.
	Entropy float64
	// Severity of the rule's findings.
	Severity report.Severity
	// Path, when set, limits the rule to files whose slash-separated path
	// matches it.
	Path *regexp.Regexp
	// Allowlists drop findings; any one matching is enough.
	Allowlists []Allowlist
	// Check, when set, must accept the secret (a checksum, say) for the
	// finding to be reported.
	Check func(secret string) bool
	// Scope says how far from a keyword hit the regex runs.
	Scope Scope
	// Reach is, for ScopeLine rules whose matches span lines (PEM blocks),
	// how many bytes past the keyword a match may end.
	Reach int
	// Generic marks a catch-all rule (a high-entropy assignment, say):
	// its findings are dropped where a specific rule found the same
	// secret.
	Generic bool
	// Remediation is advice shown with findings; a general one is used
	// when empty.
	Remediation string

	// quick, when set, must accept a window before the regex runs over
	// it: a cheap test of something every match needs (our generic rules
	// have keywords that occur on many lines of code).
	quick func(window []byte) bool
}

// Scope says which part of the content a rule's regex is run over.
type Scope int

const (
	// ScopeLine runs the regex over the lines holding keyword hits (and
	// Reach bytes past them). Our own rules use it: each is written so
	// that its match lies on the line of one of its keywords.
	ScopeLine Scope = iota
	// ScopeContent runs the regex over the whole content when any keyword
	// appears anywhere in it (gitleaks' semantics, used for rules loaded
	// from its TOML files).
	ScopeContent
)

// Target is what an allowlist's regexes are matched against.
type Target int

// Allowlist regex targets.
const (
	TargetSecret Target = iota // the secret alone (the default)
	TargetMatch                // the whole regex match
	TargetLine                 // the line(s) holding the match
)

// Allowlist describes findings to drop.
type Allowlist struct {
	Description string
	// MatchAll requires every check that is set to match (gitleaks'
	// condition = "AND"); otherwise any one is enough.
	MatchAll bool
	// Commits are commit hashes whose findings are dropped.
	Commits []string
	// Paths are regexes over the file's slash-separated path.
	Paths []*regexp.Regexp
	// RegexTarget is what Regexes are matched against.
	RegexTarget Target
	// Regexes drop findings whose target matches one of them.
	Regexes []*regexp.Regexp
	// StopWords drop secrets that contain one of them (case-insensitive).
	StopWords []string
}

// empty reports whether the allowlist has no check at all.
func (a *Allowlist) empty() bool {
	return len(a.Commits) == 0 && len(a.Paths) == 0 && len(a.Regexes) == 0 && len(a.StopWords) == 0
}

// pathOnly reports whether the allowlist depends on nothing but the path
// and commit, so it can be decided once per file.
func (a *Allowlist) fileLevel() bool {
	return len(a.Regexes) == 0 && len(a.StopWords) == 0
}

// allowsFile reports whether the allowlist drops every finding of a file.
// Only meaningful when fileLevel is true.
func (a *Allowlist) allowsFile(path, commit string) bool {
	checks := []func() bool{}
	if len(a.Commits) > 0 {
		checks = append(checks, func() bool { return containsFold(a.Commits, commit) })
	}
	if len(a.Paths) > 0 {
		checks = append(checks, func() bool { return anyMatch(a.Paths, path) })
	}
	return combine(a.MatchAll, checks)
}

// allows reports whether the allowlist drops a finding.
func (a *Allowlist) allows(path, commit, secret, match, line string) bool {
	var checks []func() bool
	if len(a.Commits) > 0 {
		checks = append(checks, func() bool { return containsFold(a.Commits, commit) })
	}
	if len(a.Paths) > 0 {
		checks = append(checks, func() bool { return anyMatch(a.Paths, path) })
	}
	if len(a.Regexes) > 0 {
		target := secret
		switch a.RegexTarget {
		case TargetMatch:
			target = match
		case TargetLine:
			target = line
		}
		checks = append(checks, func() bool { return anyMatch(a.Regexes, target) })
	}
	if len(a.StopWords) > 0 {
		checks = append(checks, func() bool {
			s := strings.ToLower(secret)
			for _, w := range a.StopWords {
				if strings.Contains(s, strings.ToLower(w)) {
					return true
				}
			}
			return false
		})
	}
	return combine(a.MatchAll, checks)
}

func combine(all bool, checks []func() bool) bool {
	if len(checks) == 0 {
		return false
	}
	for _, c := range checks {
		ok := c()
		if ok && !all {
			return true
		}
		if !ok && all {
			return false
		}
	}
	return all
}

func containsFold(list []string, s string) bool {
	if s == "" {
		return false
	}
	for _, x := range list {
		if strings.EqualFold(strings.TrimSpace(x), s) {
			return true
		}
	}
	return false
}

func anyMatch(res []*regexp.Regexp, s string) bool {
	for _, re := range res {
		if re.MatchString(s) {
			return true
		}
	}
	return false
}

// validate checks a rule before an Engine uses it.
func (r *Rule) validate() error {
	if strings.TrimSpace(r.ID) == "" {
		return fmt.Errorf("a rule needs an id (description %q)", r.Description)
	}
	if r.Regex == nil && r.Path == nil {
		return fmt.Errorf("rule %s: needs a regex or a path", r.ID)
	}
	if r.Regex != nil && r.SecretGroup > r.Regex.NumSubexp() {
		return fmt.Errorf("rule %s: secret group %d but the regex has only %d groups", r.ID, r.SecretGroup, r.Regex.NumSubexp())
	}
	if r.SecretGroup < 0 || r.Entropy < 0 || r.Reach < 0 {
		return fmt.Errorf("rule %s: secret group, entropy and reach must not be negative", r.ID)
	}
	for i, k := range r.Keywords {
		if k == "" {
			return fmt.Errorf("rule %s: keyword %d is empty", r.ID, i+1)
		}
	}
	for i := range r.Allowlists {
		if r.Allowlists[i].empty() {
			return fmt.Errorf("rule %s: allowlist %d has no commits, paths, regexes or stop words", r.ID, i+1)
		}
	}
	return nil
}
