// Package exception is Rampart's one exception object: a permission, owned
// by someone, given for a reason and until a date, to set one rule aside in
// a scope. The scanner's suppressions (.rampart/ignore.yaml), the
// exceptions kept in a policy bundle and the org exceptions stored in the
// database are all this type, and every consumer — scan reports, pull
// request, image, pre-deploy and admission gates — matches it the same way.
//
// # Scope
//
// An exception names what it sets aside and where:
//
//   - id: a rule, check, policy or advisory id; an advisory's aliases
//     match too (CVE-2024-1234 sets aside the GHSA advisory that has it as
//     an alias);
//   - fingerprint: exactly one finding;
//   - paths: globs (doublestar syntax, ** crosses directories) of the
//     files it covers;
//   - repository: an org/repository name or glob (acme/*);
//   - image: an image reference or glob; without a tag or digest it
//     covers every tag and digest of the repository;
//   - environment: a deployment environment or glob (prod-*).
//
// Every field that is set must match; a field the checked thing does not
// have (an image exception against a source scan) does not match. An
// exception must name an id, a fingerprint or paths: one that named only
// a repository would switch every rule off there.
//
// # Expiry
//
// Expires is a calendar date; the exception holds through the whole day
// (UTC) and stops applying after it. An expired exception is never
// applied, and consumers report it, so that no exception silently
// outlives its reason.
package exception

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"
)

// Limits of one exception's fields.
const (
	MaxReason = 500
	maxField  = 256
	maxPaths  = 64
)

// Date is a calendar date written YYYY-MM-DD.
type Date struct{ time.Time }

// ParseDate reads YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return Date{}, fmt.Errorf("%q must be a date like 2027-03-31", s)
	}
	return Date{t}, nil
}

// UnmarshalYAML reads YYYY-MM-DD.
func (d *Date) UnmarshalYAML(n *yaml.Node) error {
	t, err := time.Parse(time.DateOnly, n.Value)
	if err != nil {
		return fmt.Errorf("line %d: expires %q must be a date like 2027-03-31", n.Line, n.Value)
	}
	d.Time = t
	return nil
}

// MarshalText writes YYYY-MM-DD.
func (d Date) MarshalText() ([]byte, error) { return []byte(d.Format(time.DateOnly)), nil }

// MarshalJSON writes "YYYY-MM-DD" (not the time.Time it embeds).
func (d Date) MarshalJSON() ([]byte, error) { return []byte(`"` + d.Format(time.DateOnly) + `"`), nil }

// UnmarshalJSON reads "YYYY-MM-DD".
func (d *Date) UnmarshalJSON(b []byte) error {
	s, err := strconv.Unquote(string(b))
	if err != nil {
		return fmt.Errorf("expires must be a date string like \"2027-03-31\"")
	}
	return d.UnmarshalText([]byte(s))
}

// UnmarshalText reads YYYY-MM-DD.
func (d *Date) UnmarshalText(b []byte) error {
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// String writes YYYY-MM-DD, or "" for no date.
func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return d.Format(time.DateOnly)
}

// Exception is one exception. The yaml names are those of
// .rampart/ignore.yaml.
type Exception struct {
	// ID is a rule, check, policy or advisory id (or one of an advisory's
	// aliases).
	ID string `yaml:"id" json:"id,omitempty"`
	// Fingerprint sets aside exactly one finding.
	Fingerprint string `yaml:"fingerprint" json:"fingerprint,omitempty"`
	// Paths narrow the exception to files matching one of these globs.
	Paths []string `yaml:"paths" json:"paths,omitempty"`
	// Repository narrows it to a repository (org/name, glob).
	Repository string `yaml:"repository" json:"repository,omitempty"`
	// Image narrows it to an image reference (glob).
	Image string `yaml:"image" json:"image,omitempty"`
	// Environment narrows it to a deployment environment (glob).
	Environment string `yaml:"environment" json:"environment,omitempty"`
	Reason      string `yaml:"reason" json:"reason"`
	Owner       string `yaml:"owner" json:"owner,omitempty"`
	Expires     Date   `yaml:"expires" json:"expires,omitzero"`

	// Where the exception comes from: a file (Source and Line) or the
	// database (Source "org NAME" and Number).
	Source string `yaml:"-" json:"source,omitempty"`
	Line   int    `yaml:"-" json:"line,omitempty"`
	Number int64  `yaml:"-" json:"number,omitempty"`
}

// Target is what an exception is checked against: a finding or a gate's
// violation, with the context it was found in.
type Target struct {
	// IDs are the rule or policy id and every other id the thing is known
	// by (advisory id and aliases).
	IDs         []string
	Fingerprint string
	// Path is slash-separated, relative to the repository root.
	Path        string
	Repository  string
	Image       string
	Environment string
}

// Expired reports whether the exception has stopped applying at now: it
// holds through the whole of its expiry day, UTC.
func (e Exception) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires.AddDate(0, 0, 1))
}

// Matches reports whether the exception's scope covers t, expired or not.
func (e *Exception) Matches(t Target) bool {
	if e.Fingerprint != "" && e.Fingerprint != t.Fingerprint {
		return false
	}
	if e.ID != "" && !slices.ContainsFunc(t.IDs, func(id string) bool { return strings.EqualFold(id, e.ID) }) {
		return false
	}
	if len(e.Paths) > 0 {
		if t.Path == "" {
			return false
		}
		p := path.Clean(strings.TrimPrefix(t.Path, "/"))
		if !slices.ContainsFunc(e.Paths, func(g string) bool {
			ok, _ := doublestar.Match(strings.TrimPrefix(g, "/"), p)
			return ok
		}) {
			return false
		}
	}
	if e.Repository != "" && !globMatch(e.Repository, t.Repository) {
		return false
	}
	if e.Environment != "" && !globMatch(e.Environment, t.Environment) {
		return false
	}
	if e.Image != "" && !imageMatch(e.Image, t.Image) {
		return false
	}
	return true
}

// Applies reports whether the exception sets t aside at now: it matches
// and has not expired.
func (e *Exception) Applies(t Target, now time.Time) bool {
	return !e.Expired(now) && e.Matches(t)
}

// Scoped reports whether the exception names a repository, image or
// environment: a scan that knows none of them cannot use it.
func (e *Exception) Scoped() bool {
	return e.Repository != "" || e.Image != "" || e.Environment != ""
}

// What names what the exception sets aside, for messages.
func (e Exception) What() string {
	var what string
	switch {
	case e.ID != "":
		what = e.ID
	case e.Fingerprint != "":
		what = "fingerprint " + e.Fingerprint
	default:
		what = strings.Join(e.Paths, ", ")
	}
	var in []string
	for _, s := range []struct{ k, v string }{{"repository", e.Repository}, {"image", e.Image}, {"environment", e.Environment}} {
		if s.v != "" {
			in = append(in, s.k+" "+s.v)
		}
	}
	if len(in) > 0 {
		what += " in " + strings.Join(in, ", ")
	}
	return what
}

// Where names where the exception comes from, for messages: FILE:LINE or
// "org acme #12".
func (e Exception) Where() string {
	switch {
	case e.Number != 0:
		return fmt.Sprintf("%s #%d", e.Source, e.Number)
	case e.Line != 0:
		return fmt.Sprintf("%s:%d", e.Source, e.Line)
	}
	return e.Source
}

// globMatch matches a name against a glob (path.Match syntax, case
// insensitive). An empty name never matches.
func globMatch(glob, name string) bool {
	if name == "" {
		return false
	}
	ok, err := path.Match(strings.ToLower(glob), strings.ToLower(name))
	return err == nil && ok
}

// imageMatch matches an image reference against a glob. A glob without a
// tag or digest also covers every tag and digest of the references it
// matches.
func imageMatch(glob, ref string) bool {
	if globMatch(glob, ref) {
		return true
	}
	return !hasTagOrDigest(glob) && globMatch(glob, imageRepository(ref))
}

// imageRepository cuts the tag and digest off an image reference.
func imageRepository(ref string) string {
	if i := strings.IndexByte(ref, '@'); i >= 0 {
		ref = ref[:i]
	}
	if i := strings.LastIndexByte(ref, ':'); i > strings.LastIndexByte(ref, '/') {
		ref = ref[:i]
	}
	return ref
}

func hasTagOrDigest(ref string) bool {
	return strings.Contains(ref, "@") || strings.LastIndexByte(ref, ':') > strings.LastIndexByte(ref, '/')
}

// Normalize trims the exception's fields in place.
func (e *Exception) Normalize() {
	for _, p := range []*string{&e.ID, &e.Fingerprint, &e.Repository, &e.Image, &e.Environment, &e.Reason, &e.Owner} {
		*p = strings.TrimSpace(*p)
	}
	for i := range e.Paths {
		e.Paths[i] = strings.TrimSpace(e.Paths[i])
	}
}

// Validate checks the exception; noun (not empty) words the messages
// ("suppression", "exception"). The error names the first problem.
func (e *Exception) Validate(noun string) error {
	a := "a " + noun
	if strings.ContainsRune("aeiou", rune(noun[0])) {
		a = "an " + noun
	}
	switch {
	case e.ID == "" && e.Fingerprint == "" && len(e.Paths) == 0:
		return fmt.Errorf("%s needs an id, paths or a fingerprint", a)
	case e.Reason == "":
		return fmt.Errorf("%s needs a reason", a)
	case len(e.Reason) > MaxReason || strings.ContainsFunc(e.Reason+e.ID+e.Owner, unicode.IsControl):
		return fmt.Errorf("id, reason and owner must be single lines (reason at most %d bytes)", MaxReason)
	case len(e.Paths) > maxPaths:
		return fmt.Errorf("%s names at most %d paths", a, maxPaths)
	}
	for _, f := range []struct{ name, v string }{{"id", e.ID}, {"fingerprint", e.Fingerprint}, {"owner", e.Owner},
		{"repository", e.Repository}, {"image", e.Image}, {"environment", e.Environment}} {
		if len(f.v) > maxField || strings.ContainsFunc(f.v, unicode.IsControl) {
			return fmt.Errorf("%s must be a single line of at most %d bytes", f.name, maxField)
		}
	}
	for _, g := range e.Paths {
		if g == "" || len(g) > maxField || !doublestar.ValidatePattern(g) {
			return fmt.Errorf("invalid path glob %q", g)
		}
	}
	for _, f := range []struct{ name, v string }{{"repository", e.Repository}, {"image", e.Image}, {"environment", e.Environment}} {
		if _, err := path.Match(f.v, ""); err != nil {
			return fmt.Errorf("invalid %s glob %q", f.name, f.v)
		}
	}
	return nil
}
