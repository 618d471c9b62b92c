package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/scm"
)

// preMergeGate asks the policy engine's pre-merge gate whether a pull
// request may merge, on top of the branch protection scm enforces
// itself. Its input is what scm knows of the pull request: the checks
// on its head commit, the reviews still standing and the findings it
// adds against its base.
type preMergeGate struct {
	scm    *scm.Service
	policy *policy.Service
}

// preMergeFinding is a finding as the pre-merge schema reads it.
type preMergeFinding struct {
	Kind        string         `json:"kind"`
	RuleID      string         `json:"rule_id"`
	Severity    string         `json:"severity"`
	Fingerprint string         `json:"fingerprint,omitempty"`
	Location    map[string]any `json:"location,omitempty"`
}

// MayMerge implements scm.MergeGate.
func (g preMergeGate) MayMerge(ctx context.Context, pr scm.PullRequest, r scm.Repo) error {
	statuses, err := g.scm.Statuses(ctx, r, pr.HeadSHA)
	if err != nil {
		return err
	}
	checks := []map[string]string{}
	for _, st := range statuses {
		checks = append(checks, map[string]string{"name": st.Context, "status": st.State})
	}
	reviews, err := g.scm.Reviews(ctx, pr)
	if err != nil {
		return err
	}
	// The latest standing review of each reviewer counts.
	latest := map[string]string{}
	var order []string
	for _, rv := range reviews {
		if rv.Dismissed {
			continue
		}
		if _, ok := latest[rv.Author]; !ok {
			order = append(order, rv.Author)
		}
		if rv.State != scm.ReviewCommented || latest[rv.Author] == "" {
			latest[rv.Author] = rv.State
		}
	}
	approvals := []map[string]string{}
	for _, who := range order {
		approvals = append(approvals, map[string]string{"user": who, "state": latest[who]})
	}
	found, err := g.scm.PullFindings(ctx, r, pr)
	if err != nil {
		return err
	}
	findings := []preMergeFinding{}
	for _, f := range found {
		findings = append(findings, preMergeFinding{Kind: string(f.Kind), RuleID: f.RuleID, Severity: strings.ToLower(f.Severity.String()),
			Fingerprint: f.Fingerprint, Location: map[string]any{"path": f.Location.Path}})
	}
	doc := map[string]any{
		"repository": r.FullName(),
		"pull_request": map[string]any{"number": pr.Number, "title": pr.Title, "author": pr.Author,
			"source_branch": pr.Head, "target_branch": pr.Base, "head_commit": pr.HeadSHA},
		"checks": checks, "approvals": approvals, "findings": findings,
	}
	d, err := g.policy.Decide(ctx, policy.GatePreMerge, policy.Input{OrgID: r.OrgID, Repository: r.FullName(),
		Subject: "pr:" + r.FullName() + "#" + strconv.FormatInt(pr.Number, 10), Caller: "scm", Document: doc})
	if err != nil {
		return err
	}
	if d.Allow {
		return nil
	}
	reasons := make([]string, 0, len(d.Deny))
	for _, v := range d.Deny {
		reasons = append(reasons, v.String())
	}
	return apperr.E(apperr.Forbidden, "policy: %s", strings.Join(reasons, "; "))
}
