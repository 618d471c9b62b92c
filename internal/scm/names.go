package scm

import (
	"path"
	"strings"
	"unicode/utf8"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/identity"
)

// Limits on names.
const (
	maxRefLen     = 255
	maxPatternLen = 255
)

// ValidateRepoName checks a repository name: the rules of org and project
// names (identity.ValidateName: lowercase letters, digits, '.', '_', '-',
// no "..", no control characters, nothing that reads as a path), and no
// ".git" suffix, which clone URLs add.
func ValidateRepoName(name string) error {
	if err := identity.ValidateName("name", name); err != nil {
		return err
	}
	if strings.HasSuffix(name, ".git") {
		return apperr.InvalidField("name", "name must not end in .git (clone URLs add it)")
	}
	return nil
}

// ValidateRefName checks a full ref name (refs/heads/main) by git's rules
// (git check-ref-format), stricter where they are loose: no control
// characters, no "..", no component starting with '.' or ending in
// ".lock", none of space ~ ^ : ? * [ \, no "@{", no empty component, at
// most 255 bytes of UTF-8.
func ValidateRefName(ref string) error {
	bad := func(why string) error {
		return apperr.InvalidField("ref", "invalid ref name %q: %s", clip(ref, 80), why)
	}
	switch {
	case ref == "":
		return apperr.InvalidField("ref", "ref name must not be empty")
	case len(ref) > maxRefLen:
		return bad("longer than 255 bytes")
	case !utf8.ValidString(ref):
		return bad("not UTF-8")
	case !strings.HasPrefix(ref, "refs/"):
		return bad("must start with refs/")
	case strings.HasSuffix(ref, "/"), strings.HasSuffix(ref, "."):
		return bad("must not end with '/' or '.'")
	case strings.Contains(ref, ".."):
		return bad("must not contain \"..\"")
	case strings.Contains(ref, "@{"):
		return bad("must not contain \"@{\"")
	case strings.Contains(ref, "//"):
		return bad("must not contain an empty component")
	}
	for _, r := range ref {
		if r < 0x20 || r == 0x7f {
			return bad("must not contain control characters")
		}
		if strings.ContainsRune(" ~^:?*[\\", r) {
			return bad("must not contain space, ~, ^, :, ?, *, [ or \\")
		}
	}
	for c := range strings.SplitSeq(ref, "/") {
		if strings.HasPrefix(c, ".") {
			return bad("no component may start with '.'")
		}
		if strings.HasSuffix(c, ".lock") {
			return bad("no component may end with .lock")
		}
	}
	return nil
}

// ValidateBranchName checks a short branch name (main, feature/x).
func ValidateBranchName(name string) error {
	if name == "" {
		return apperr.InvalidField("branch", "branch name must not be empty")
	}
	if strings.HasPrefix(name, "-") || name == "HEAD" || strings.HasPrefix(name, "refs/") {
		return apperr.InvalidField("branch", "invalid branch name %q", clip(name, 80))
	}
	if err := ValidateRefName("refs/heads/" + name); err != nil {
		return apperr.InvalidField("branch", "invalid branch name %q: %s", clip(name, 80), strings.TrimPrefix(apperr.Message(err), "invalid ref name "))
	}
	return nil
}

// ValidatePattern checks a branch protection pattern: a branch name in
// which '*' matches any run of characters other than '/' and '?' one
// character (path.Match).
func ValidatePattern(p string) error {
	if p == "" || len(p) > maxPatternLen {
		return apperr.InvalidField("pattern", "pattern must be 1-255 bytes")
	}
	if _, err := path.Match(p, "x"); err != nil {
		return apperr.InvalidField("pattern", "pattern %q is malformed: %v", clip(p, 80), err)
	}
	// The pattern with its wildcards replaced must be a valid branch name.
	plain := strings.NewReplacer("*", "x", "?", "x", "[", "x", "]", "x").Replace(p)
	if err := ValidateBranchName(plain); err != nil {
		return apperr.InvalidField("pattern", "pattern %q would never match a valid branch name", clip(p, 80))
	}
	return nil
}

// matchPattern reports whether branch matches a protection pattern.
func matchPattern(pattern, branch string) bool {
	ok, err := path.Match(pattern, branch)
	return err == nil && ok
}

// clip shortens s for messages, replacing control characters.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}
