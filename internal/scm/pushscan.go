package scm

import (
	"context"
	"fmt"
	"sort"

	"github.com/rampartsec/rampart/internal/scan/report"
	"github.com/rampartsec/rampart/internal/scan/source"
)

// scanPush runs the secret engine over the blobs a push brings: the
// history of every new ref value minus everything the repository already
// had (its refs before the push and the old values).
func (p *pushSession) scanPush(ctx context.Context, env []string, ups []refUpdate, current map[string]string) ([]report.Finding, error) {
	var include, exclude []string
	for _, u := range ups {
		if !u.delete() {
			include = append(include, u.New)
		}
		if !u.create() {
			exclude = append(exclude, u.Old)
		}
	}
	if len(include) == 0 {
		return nil, nil
	}
	view, cleanup, err := p.s.scanView(ctx, p.c.Repo, env, current)
	if err != nil {
		return nil, err
	}
	defer cleanup()
	src := source.Git(view, source.GitOptions{Include: include, Exclude: exclude, ExcludeRefs: true})
	findings, _, _, err := p.s.engine.ScanSource(ctx, src, 0)
	if err != nil {
		return nil, fmt.Errorf("scan push: %w", err)
	}
	var out []report.Finding
	for _, f := range findings {
		if f.Suppressed == nil {
			out = append(out, f)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].Location, out[j].Location
		if a.Path != b.Path {
			return a.Path < b.Path
		}
		return a.StartLine < b.StartLine
	})
	return out, nil
}

// maxListedSecrets caps the findings a rejection lists.
const maxListedSecrets = 20

// secretMessage is what the git client prints when push protection
// refuses a push: each secret's file, line, rule and commit, then how to
// fix it or bypass the check.
func secretMessage(fs []report.Finding) []string {
	noun := "secret"
	if len(fs) > 1 {
		noun = "secrets"
	}
	lines := []string{"", fmt.Sprintf("rampart: push refused by push protection: %d %s found in the commits you are pushing", len(fs), noun), ""}
	for i, f := range fs {
		if i == maxListedSecrets {
			lines = append(lines, fmt.Sprintf("  … and %d more", len(fs)-i))
			break
		}
		red := ""
		if f.Secret != nil && f.Secret.Redacted != "" {
			red = ", " + f.Secret.Redacted
		}
		lines = append(lines,
			fmt.Sprintf("  %s:%d  %s (%s%s)", f.Location.Path, f.Location.StartLine, f.RuleID, f.Title, red),
			fmt.Sprintf("    commit %s by %s", short(f.Location.Commit), f.Location.Author))
	}
	return append(lines, "",
		"How to fix:",
		"  1. Revoke or rotate the secret at its issuer: treat it as exposed.",
		"  2. Remove it from every commit of this push (git commit --amend for the last",
		"     commit, git rebase -i for earlier ones) and load it from a vault or the",
		"     environment instead.",
		"  3. Push again.",
		"If it is not a real secret (a test fixture, an example), push with a reason:",
		"  git push -o secret-bypass=\"test fixture, not a live credential\"",
		"A bypass is recorded in the audit log and raises a security alert.",
		"")
}
