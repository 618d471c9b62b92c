package app

import (
	"context"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/apperr"
	"github.com/rampartsec/rampart/internal/policy"
	"github.com/rampartsec/rampart/internal/registry"
	"github.com/rampartsec/rampart/internal/scan/report"
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

// imageGate is the registry's policy after a scan: the policy engine's
// image gate, asked whether the image may be pulled. An image it denies
// stays quarantined with the gate's reasons.
type imageGate struct {
	policy *policy.Service
	// host names the registry in image references.
	host string
	// orgID finds the org a repository (ORG/…) belongs to.
	orgID func(ctx context.Context, repository string) (int64, error)
}

// gateVuln and gateSecret are findings as the image schema reads them.
type gateVuln struct {
	ID           string   `json:"id"`
	Aliases      []string `json:"aliases,omitempty"`
	Severity     string   `json:"severity"`
	Package      string   `json:"package,omitempty"`
	Version      string   `json:"version,omitempty"`
	FixedVersion string   `json:"fixed_version"`
}

type gateSecret struct {
	RuleID      string `json:"rule_id"`
	Path        string `json:"path,omitempty"`
	Fingerprint string `json:"fingerprint,omitempty"`
}

// Evaluate implements registry.Policy.
func (g imageGate) Evaluate(ctx context.Context, f registry.ImageFacts) (registry.Verdict, error) {
	orgID, err := g.orgID(ctx, f.Repository)
	if err != nil {
		return registry.Verdict{}, err
	}
	ref := g.host + "/" + f.Repository + "@" + f.Digest
	doc := map[string]any{"action": "pull", "image": map[string]any{
		"reference": ref, "repository": g.host + "/" + f.Repository, "registry": g.host, "digest": f.Digest,
		"scan": scanDoc("scanned", f.Report),
	}}
	d, err := g.policy.Decide(ctx, policy.GateImage, policy.Input{OrgID: orgID, Subject: "image:" + ref, Caller: "registry", Document: doc})
	if err != nil {
		return registry.Verdict{}, err
	}
	if d.Allow {
		return registry.Verdict{Allow: true}, nil
	}
	reasons := make([]string, 0, len(d.Deny))
	for _, v := range d.Deny {
		reasons = append(reasons, v.String())
	}
	return registry.Verdict{Reason: strings.Join(reasons, "; ")}, nil
}

// scanDoc is a scan report as the image schema reads it: unsuppressed
// findings counted by severity, the vulnerabilities and the secrets.
func scanDoc(status string, rep *report.Report) map[string]any {
	vulns, secrets := []gateVuln{}, []gateSecret{}
	summary := map[string]int{}
	if rep != nil {
		for _, x := range rep.Findings {
			if x.Suppressed != nil {
				continue
			}
			sev := strings.ToLower(x.Severity.String())
			summary[sev]++
			switch {
			case x.Kind == report.KindSecret:
				secrets = append(secrets, gateSecret{RuleID: x.RuleID, Path: x.Location.Path, Fingerprint: x.Fingerprint})
			case x.Kind == report.KindVulnerability && x.Vuln != nil:
				vulns = append(vulns, gateVuln{ID: x.RuleID, Aliases: x.Vuln.Aliases, Severity: sev, Package: x.Vuln.Package.Name,
					Version: x.Vuln.Package.Version, FixedVersion: x.Vuln.FixedVersion})
			}
		}
	}
	return map[string]any{"status": status, "summary": summary, "vulnerabilities": vulns, "secrets": secrets}
}
