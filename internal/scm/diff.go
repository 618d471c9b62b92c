package scm

import (
	"bufio"
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
)

// Limits of a rendered diff.
const (
	maxDiffFiles     = 300
	maxDiffFileLines = 5000
	maxDiffBytes     = 8 << 20
)

// Diff is the change between two commits, file by file.
type Diff struct {
	Files []FileDiff
	// Truncated is set when files were left out (over maxDiffFiles or
	// maxDiffBytes).
	Truncated bool
	// Base and Head are the commits compared.
	Base, Head string
}

// File change kinds.
const (
	FileAdded    = "added"
	FileDeleted  = "deleted"
	FileModified = "modified"
	FileRenamed  = "renamed"
)

// FileDiff is one file's change.
type FileDiff struct {
	OldPath, NewPath string
	Status           string
	Binary           bool
	Hunks            []Hunk
	// Truncated is set when the file's hunks were cut at maxDiffFileLines.
	Truncated      bool
	Added, Deleted int
}

// Path is the file's name after the change (before it, when deleted).
func (f FileDiff) Path() string {
	if f.Status == FileDeleted {
		return f.OldPath
	}
	return f.NewPath
}

// Hunk is a run of changed lines with their context.
type Hunk struct {
	Header             string
	OldStart, NewStart int
	Lines              []DiffLine
}

// DiffLine is one line of a hunk: Kind is '+', '-' or ' '; Old and New
// are its numbers on each side (0 where it does not exist).
type DiffLine struct {
	Kind     byte
	Old, New int
	Text     string
}

// HasLine reports whether the diff shows line n of path on side ("new"
// or "old").
func (d *Diff) HasLine(path, side string, n int) bool {
	for _, f := range d.Files {
		if f.Path() != path && f.OldPath != path {
			continue
		}
		for _, h := range f.Hunks {
			for _, l := range h.Lines {
				if (side == "old" && l.Old == n) || (side != "old" && l.New == n) {
					return true
				}
			}
		}
	}
	return false
}

// ParseDiff reads `git diff` output (unified, with --full-index or not).
// It never fails: what it cannot read it skips, and it stops at the
// limits above, marking the diff truncated.
func ParseDiff(text string) *Diff {
	d := &Diff{}
	if len(text) > maxDiffBytes {
		text = text[:maxDiffBytes]
		d.Truncated = true
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 64<<10), maxDiffBytes+1)
	var (
		f        *FileDiff
		h        *Hunk
		old, new int
		lines    int
	)
	flush := func() {
		if f != nil {
			if len(d.Files) < maxDiffFiles {
				d.Files = append(d.Files, *f)
			} else {
				d.Truncated = true
			}
		}
		f, h = nil, nil
	}
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "diff --git "):
			flush()
			a, b := splitGitPaths(strings.TrimPrefix(line, "diff --git "))
			f = &FileDiff{OldPath: a, NewPath: b, Status: FileModified}
			lines = 0
		case f == nil:
			continue
		case h == nil && strings.HasPrefix(line, "new file mode"):
			f.Status = FileAdded
		case h == nil && strings.HasPrefix(line, "deleted file mode"):
			f.Status = FileDeleted
		case h == nil && strings.HasPrefix(line, "rename from "):
			f.OldPath, f.Status = unquotePath(strings.TrimPrefix(line, "rename from ")), FileRenamed
		case h == nil && strings.HasPrefix(line, "rename to "):
			f.NewPath, f.Status = unquotePath(strings.TrimPrefix(line, "rename to ")), FileRenamed
		case h == nil && strings.HasPrefix(line, "--- "):
			if p := strings.TrimPrefix(line, "--- "); p != "/dev/null" {
				f.OldPath = strings.TrimPrefix(unquotePath(p), "a/")
			}
		case h == nil && strings.HasPrefix(line, "+++ "):
			if p := strings.TrimPrefix(line, "+++ "); p != "/dev/null" {
				f.NewPath = strings.TrimPrefix(unquotePath(p), "b/")
			}
		case strings.HasPrefix(line, "Binary files "), line == "GIT binary patch":
			f.Binary = true
		case strings.HasPrefix(line, "@@ "):
			os, ns, ok := parseHunkHeader(line)
			if !ok {
				h = nil
				continue
			}
			if f.Truncated {
				continue
			}
			f.Hunks = append(f.Hunks, Hunk{Header: line, OldStart: os, NewStart: ns})
			h = &f.Hunks[len(f.Hunks)-1]
			old, new = os, ns
		case h != nil && len(line) > 0 && (line[0] == '+' || line[0] == '-' || line[0] == ' '):
			if lines >= maxDiffFileLines {
				f.Truncated = true
				h = nil
				continue
			}
			lines++
			dl := DiffLine{Kind: line[0], Text: line[1:]}
			switch line[0] {
			case '+':
				dl.New = new
				new++
				f.Added++
			case '-':
				dl.Old = old
				old++
				f.Deleted++
			default:
				dl.Old, dl.New = old, new
				old++
				new++
			}
			h.Lines = append(h.Lines, dl)
		case h != nil && line == "":
			// A context line of an empty line whose space was stripped.
			if lines >= maxDiffFileLines {
				continue
			}
			lines++
			h.Lines = append(h.Lines, DiffLine{Kind: ' ', Old: old, New: new})
			old++
			new++
		}
	}
	flush()
	return d
}

// parseHunkHeader reads "@@ -a,b +c,d @@ …".
func parseHunkHeader(line string) (oldStart, newStart int, ok bool) {
	rest := strings.TrimPrefix(line, "@@ ")
	f := strings.Fields(rest)
	if len(f) < 3 || f[2] != "@@" || !strings.HasPrefix(f[0], "-") || !strings.HasPrefix(f[1], "+") {
		return 0, 0, false
	}
	num := func(s string) (int, bool) {
		s, _, _ = strings.Cut(s, ",")
		n, err := strconv.Atoi(s)
		return n, err == nil && n >= 0 && n < 1<<30
	}
	o, ok1 := num(f[0][1:])
	n, ok2 := num(f[1][1:])
	return o, n, ok1 && ok2
}

// splitGitPaths splits "a/x b/y" of a diff --git line (paths may be
// quoted). When unquoted paths contain spaces it assumes both are equal.
func splitGitPaths(s string) (string, string) {
	if strings.HasPrefix(s, `"`) {
		if a, rest, ok := cutQuoted(s); ok {
			b := strings.TrimPrefix(rest, " ")
			return strings.TrimPrefix(a, "a/"), strings.TrimPrefix(unquotePath(b), "b/")
		}
	}
	if i := strings.Index(s, ` "b/`); i >= 0 {
		return strings.TrimPrefix(s[:i], "a/"), strings.TrimPrefix(unquotePath(s[i+1:]), "b/")
	}
	// "a/P b/P": split in the middle.
	if n := len(s); n%2 == 1 {
		a, b := s[:n/2], s[n/2+1:]
		if strings.TrimPrefix(a, "a/") == strings.TrimPrefix(b, "b/") {
			return strings.TrimPrefix(a, "a/"), strings.TrimPrefix(b, "b/")
		}
	}
	a, b, _ := strings.Cut(s, " b/")
	return strings.TrimPrefix(a, "a/"), b
}

func cutQuoted(s string) (string, string, bool) {
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			i++
		case '"':
			u, err := strconv.Unquote(s[:i+1])
			if err != nil {
				return "", "", false
			}
			return u, s[i+1:], true
		}
	}
	return "", "", false
}

// unquotePath undoes git's C-style quoting of unusual paths.
func unquotePath(p string) string {
	if len(p) >= 2 && p[0] == '"' && p[len(p)-1] == '"' {
		if u, err := strconv.Unquote(p); err == nil {
			return u
		}
	}
	return p
}

// Compare returns the diff of head against its merge base with base.
func (s *Service) Compare(ctx context.Context, r Repo, base, head string) (*Diff, error) {
	dir := s.Path(r)
	mb, err := s.run(ctx, dir, nil, nil, "merge-base", base, head)
	if err != nil {
		if exitCode(err) == 1 {
			return nil, apperr.E(apperr.Invalid, "the branches share no history")
		}
		return nil, err
	}
	mbase := strings.TrimSpace(string(mb))
	out, err := s.run(ctx, dir, nil, nil, "-c", "core.quotepath=on", "diff", "--no-color", "--no-ext-diff", "--no-textconv",
		"-M", "--unified=3", mbase, head, "--")
	if err != nil && !apperr.Is(err, apperr.TooLarge) {
		return nil, err
	}
	d := ParseDiff(string(out))
	if apperr.Is(err, apperr.TooLarge) {
		d.Truncated = true
	}
	d.Base, d.Head = mbase, head
	return d, nil
}

// PullDiff returns what a pull request changes.
func (s *Service) PullDiff(ctx context.Context, r Repo, pr PullRequest) (*Diff, error) {
	base := pr.BaseSHA
	if pr.State == PullOpen {
		if cur, err := s.resolveCommit(ctx, s.Path(r), nil, "refs/heads/"+pr.Base); err == nil {
			base = cur
		}
	}
	return s.Compare(ctx, r, base, pr.HeadSHA)
}
