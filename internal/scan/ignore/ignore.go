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
// so exceptions cannot silently outlive their reason.
//
// These entries are Rampart's one exception object (package exception),
// the same that policy gates honour for pull requests, images, deploys and
// admission; an entry may also name a repository, image or environment,
// and then applies only where the scan knows that it matches (an entry
// scoped to an environment is for deploy gates and never suppresses in a
// source scan).
package ignore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/exception"
	"github.com/rampartsec/rampart/internal/scan/report"
)

// DefaultPath is where a repository keeps its suppressions.
const DefaultPath = ".rampart/ignore.yaml"

// Entry is one suppression: Rampart's exception object.
type Entry = exception.Exception

// Date is a calendar date written YYYY-MM-DD.
type Date = exception.Date

// File is a parsed ignore file.
type File struct {
	Path         string  `json:"path"`
	Suppressions []Entry `json:"suppressions"`
	// Repository and Image say what is being scanned, when the caller
	// knows: entries scoped to them then apply.
	Repository string `json:"repository,omitempty"`
	Image      string `json:"image,omitempty"`
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
	list, err := exception.Parse(name, r, exception.KeySuppressions)
	if err != nil {
		return nil, err
	}
	return &File{Path: name, Suppressions: list}, nil
}

// target is what a suppression is matched against for finding f.
func (f *File) target(fd *report.Finding) exception.Target {
	t := exception.Target{IDs: []string{fd.RuleID}, Fingerprint: fd.Fingerprint, Repository: f.Repository, Image: f.Image}
	if fd.Vuln != nil {
		t.IDs = append(t.IDs, fd.Vuln.ID)
		t.IDs = append(t.IDs, fd.Vuln.Aliases...)
	}
	if fd.Location.Path != "" {
		t.Path = path.Clean(strings.TrimPrefix(fd.Location.Path, "/"))
	}
	return t
}

// usable reports whether the scan knows every scope e names.
func (f *File) usable(e *Entry) bool {
	return e.Environment == "" && (e.Repository == "" || f.Repository != "") && (e.Image == "" || f.Image != "")
}

// Apply marks the findings of r that a live suppression matches, and adds
// a note for every expired suppression (it no longer suppresses) and for
// every live one that matches nothing (stale).
func (f *File) Apply(r *report.Report, now time.Time) {
	used := make([]bool, len(f.Suppressions))
	for i := range r.Findings {
		fd := &r.Findings[i]
		t := f.target(fd)
		for j := range f.Suppressions {
			e := &f.Suppressions[j]
			if !f.usable(e) || !e.Applies(t, now) {
				continue
			}
			used[j] = true
			if fd.Suppressed == nil {
				fd.Suppressed = &report.Suppressed{Reason: e.Reason, Expires: e.Expires.Time}
			}
			break
		}
	}
	for j := range f.Suppressions {
		e := &f.Suppressions[j]
		switch {
		case e.Expired(now):
			r.Notes = append(r.Notes, report.Note{Path: fmt.Sprintf("%s:%d", f.Path, e.Line),
				Message: fmt.Sprintf("suppression of %s expired on %s and no longer applies (reason was: %s)", e.What(), e.Expires.Format(time.DateOnly), e.Reason)})
		case !used[j] && f.usable(e):
			r.Notes = append(r.Notes, report.Note{Path: fmt.Sprintf("%s:%d", f.Path, e.Line),
				Message: fmt.Sprintf("suppression of %s matches no finding; remove it if the problem is gone", e.What())})
		}
	}
}

// Expired lists the suppressions past their expiry date at now.
func (f *File) Expired(now time.Time) []Entry {
	var out []Entry
	for _, e := range f.Suppressions {
		if e.Expired(now) {
			out = append(out, e)
		}
	}
	return out
}
