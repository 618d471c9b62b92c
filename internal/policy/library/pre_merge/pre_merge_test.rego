package rampart.tests.pre_merge

import data.rampart.gates.pre_merge

settings := object.union(data.rampart.config.settings, {"required_checks": ["ci/test"], "min_approvals": 1})

pr := {
	"repository": "acme/web",
	"pull_request": {"number": 7, "author": "alice", "source_branch": "fix", "target_branch": "main"},
	"checks": [{"name": "ci/test", "status": "success"}, {"name": "ci/lint", "status": "skipped"}],
	"approvals": [{"user": "bob", "state": "approved"}],
	"findings": [
		{"kind": "vulnerability", "rule_id": "GO-2024-1", "severity": "medium", "location": {"path": "go.mod"}},
		{"kind": "misconfiguration", "rule_id": "RMP-K8S-001", "severity": "high", "location": {"path": "deploy/a.yaml"}, "suppressed": {"reason": "dev only"}},
	],
}

outcome(doc) := {name: msgs |
	gate := pre_merge with input as doc with data.rampart.config.settings as settings
	some name, pol in gate
	msgs := {d.message | some d in pol.deny}
	count(msgs) > 0
}

test_good_pull_request if {
	outcome(pr) == {}
}

test_failing_pending_and_missing_checks if {
	outcome(object.union(pr, {"checks": [{"name": "ci/lint", "status": "failure"}, {"name": "ci/build", "status": "pending"}]})) == {"checks": {
		"check ci/lint is failure",
		"check ci/build is pending",
		"required check ci/test has not reported",
	}}
}

test_self_approval_does_not_count if {
	outcome(object.union(pr, {"approvals": [{"user": "alice", "state": "approved"}]})) == {"approvals": {"0 approval(s) from reviewers other than the author, 1 required"}}
}

test_requested_changes_block if {
	outcome(object.union(pr, {"approvals": [{"user": "bob", "state": "approved"}, {"user": "carol", "state": "changes_requested"}]})) == {"approvals": {"carol requested changes"}}
}

test_two_approvals_when_configured if {
	two := object.union(settings, {"min_approvals": 2})
	ds := pre_merge.approvals.deny with input as pr with data.rampart.config.settings as two
	{d.message | some d in ds} == {"1 approval(s) from reviewers other than the author, 2 required"}
}

test_new_high_finding_blocks if {
	f := {"kind": "vulnerability", "rule_id": "GHSA-1", "severity": "critical", "location": {"path": "go.mod"}, "vulnerability": {"aliases": ["CVE-2024-5"]}, "fingerprint": "abc"}
	doc := object.union(pr, {"findings": array.concat(pr.findings, [f])})
	outcome(doc) == {"findings": {"new vulnerability finding GHSA-1 (critical) in go.mod"}}
	some d in pre_merge.findings.deny with input as doc with data.rampart.config.settings as settings
	d.ids == ["GHSA-1", "CVE-2024-5"]
	d.fingerprint == "abc"
}

test_new_secret_blocks_whatever_its_severity if {
	f := {"kind": "secret", "rule_id": "github-pat", "severity": "low", "location": {"path": "ci.env"}}
	outcome(object.union(pr, {"findings": [f]})) == {"secrets": {"new secret (github-pat) in ci.env"}}
	outcome(object.union(pr, {"findings": [object.union(f, {"suppressed": {"reason": "revoked test token"}})]})) == {}
}
