// Package ignore reads suppressions from .rampart/ignore.yaml and applies
// them to scan reports.
//
// A suppression names what it silences — a rule or advisory id (an alias
// such as a CVE matches too), path globs (alone: everything under them,
// e.g. test fixtures), or one finding's fingerprint — and says why, who
// owns it and until when:
//
//	suppressions:
//	  - id: RMP-K8S-004
//	    paths: ["deploy/dev/**"]
//	    reason: dev cluster only
//	    owner: platform-team
//	    expires: 2027-03-31
//	  - fingerprint: 3f1c…
//	    reason: test fixture, not a real key
//
// A suppressed finding stays in the report, marked, but no longer counts
// for --fail-on. An expired suppression stops suppressing and is reported,
// so exceptions cannot silently outlive their reason. These entries are the
// same exception object that policy gates honour elsewhere in Rampart.
package ignore

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/bmatcuk/doublestar/v4"
	"go.yaml.in/yaml/v3"

	"github.com/rampartsec/rampart/internal/scan/report"
)

// DefaultPath is where a repository keeps its suppressions.
const DefaultPath = ".rampart/ignore.yaml"

// maxFileSize caps an ignore file.
const maxFileSize = 1 << 20

// Entry is one suppression.
type Entry struct {
	// ID is a rule, check or advisory id (or one of an advisory's aliases).
	ID string `yaml:"id" json:"id,omitempty"`
	// Paths narrow the entry to findings whose path matches one of these
	// globs (doublestar syntax: ** crosses directories).
	Paths []string `yaml:"paths" json:"paths,omitempty"`
	// Fingerprint silences exactly one finding.
	Fingerprint string    `yaml:"fingerprint" json:"fingerprint,omitempty"`
	Reason      string    `yaml:"reason" json:"reason"`
	Owner       string    `yaml:"owner" json:"owner,omitempty"`
	Expires     Date      `yaml:"expires" json:"expires,omitzero"`
	Line        int       `yaml:"-" json:"line,omitempty"`
	expiresAt   time.Time // end of the expiry day, UTC
}

// Date is a calendar date written YYYY-MM-DD.
type Date struct{ time.Time }

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

// File is a parsed ignore file.
type File struct {
	Path         string  `json:"path"`
	Suppressions []Entry `json:"suppressions"`
}

type fileYAML struct {
	Suppressions []Entry `yaml:"suppressions"`
}

// Load reads an ignore file; a missing file is an empty one.
func Load(p string) (*File, error) {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return &File{Path: p}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(p, f)
}

// Parse reads an ignore file's contents. Unknown fields, entries without a
// reason or without anything to match, and bad globs or dates are errors
// with their line.
func Parse(name string, r io.Reader) (*File, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxFileSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", name, maxFileSize)
	}
	out := &File{Path: name}
	if len(bytes.TrimSpace(b)) == 0 {
		return out, nil
	}
	var root yaml.Node
	if err := yaml.Unmarshal(b, &root); err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var fy fileYAML
	if err := dec.Decode(&fy); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	lines := entryLines(&root)
	for i, e := range fy.Suppressions {
		if i < len(lines) {
			e.Line = lines[i]
		}
		at := fmt.Sprintf("%s:%d", name, e.Line)
		e.ID = strings.TrimSpace(e.ID)
		e.Fingerprint = strings.TrimSpace(e.Fingerprint)
		e.Reason = strings.TrimSpace(e.Reason)
		switch {
		case e.ID == "" && e.Fingerprint == "" && len(e.Paths) == 0:
			return nil, fmt.Errorf("%s: a suppression needs an id, paths or a fingerprint", at)
		case e.Reason == "":
			return nil, fmt.Errorf("%s: a suppression needs a reason", at)
		case len(e.Reason) > 500 || strings.ContainsFunc(e.Reason+e.ID+e.Owner, unicode.IsControl):
			return nil, fmt.Errorf("%s: id, reason and owner must be single lines (reason at most 500 bytes)", at)
		}
		for _, g := range e.Paths {
			if !doublestar.ValidatePattern(g) {
				return nil, fmt.Errorf("%s: invalid path glob %q", at, g)
			}
		}
		if !e.Expires.IsZero() {
			e.expiresAt = e.Expires.AddDate(0, 0, 1) // valid through the whole day
		}
		out.Suppressions = append(out.Suppressions, e)
	}
	return out, nil
}

// entryLines returns the line of each item of the suppressions sequence.
func entryLines(root *yaml.Node) []int {
	if root == nil || len(root.Content) == 0 {
		return nil
	}
	doc := root.Content[0]
	if doc.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(doc.Content); i += 2 {
		if doc.Content[i].Value == "suppressions" && doc.Content[i+1].Kind == yaml.SequenceNode {
			var out []int
			for _, item := range doc.Content[i+1].Content {
				out = append(out, item.Line)
			}
			return out
		}
	}
	return nil
}

// matches reports whether e silences f.
func (e *Entry) matches(f *report.Finding) bool {
	if e.Fingerprint != "" && e.Fingerprint != f.Fingerprint {
		return false
	}
	if e.ID != "" && !strings.EqualFold(e.ID, f.RuleID) && (f.Vuln == nil || !slices.ContainsFunc(f.Vuln.Aliases, func(a string) bool {
		return strings.EqualFold(a, e.ID)
	})) {
		return false
	}
	if len(e.Paths) > 0 {
		p := path.Clean(strings.TrimPrefix(f.Location.Path, "/"))
		if !slices.ContainsFunc(e.Paths, func(g string) bool {
			ok, _ := doublestar.Match(strings.TrimPrefix(g, "/"), p)
			return ok
		}) {
			return false
		}
	}
	return true
}

// Apply marks the findings of r that a live suppression matches, and adds
// a note for every expired suppression (it no longer suppresses) and for
// every live one that matches nothing (stale).
func (f *File) Apply(r *report.Report, now time.Time) {
	used := make([]bool, len(f.Suppressions))
	for i := range r.Findings {
		fd := &r.Findings[i]
		for j := range f.Suppressions {
			e := &f.Suppressions[j]
			if !e.matches(fd) {
				continue
			}
			if !e.expiresAt.IsZero() && !now.Before(e.expiresAt) {
				continue
			}
			used[j] = true
			if fd.Suppressed == nil {
				fd.Suppressed = &report.Suppressed{Reason: e.Reason, Expires: e.Expires.Time}
			}
			break
		}
	}
	for j, e := range f.Suppressions {
		what := e.ID
		switch {
		case what == "" && e.Fingerprint != "":
			what = "fingerprint " + e.Fingerprint
		case what == "":
			what = strings.Join(e.Paths, ", ")
		}
		switch {
		case !e.expiresAt.IsZero() && !now.Before(e.expiresAt):
			r.Notes = append(r.Notes, report.Note{Path: fmt.Sprintf("%s:%d", f.Path, e.Line),
				Message: fmt.Sprintf("suppression of %s expired on %s and no longer applies (reason was: %s)", what, e.Expires.Format(time.DateOnly), e.Reason)})
		case !used[j]:
			r.Notes = append(r.Notes, report.Note{Path: fmt.Sprintf("%s:%d", f.Path, e.Line),
				Message: fmt.Sprintf("suppression of %s matches no finding; remove it if the problem is gone", what)})
		}
	}
}

// Expired lists the suppressions past their expiry date at now.
func (f *File) Expired(now time.Time) []Entry {
	var out []Entry
	for _, e := range f.Suppressions {
		if !e.expiresAt.IsZero() && !now.Before(e.expiresAt) {
			out = append(out, e)
		}
	}
	return out
}
