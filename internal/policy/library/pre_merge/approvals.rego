package rampart.gates.pre_merge.approvals

import data.rampart.config.settings

metadata := {
	"id": "RMP-PR-002",
	"title": "Pull requests are approved by someone other than their author",
	"remediation": "Ask a reviewer other than the author to approve the pull request; requested changes must be resolved and the reviewer must approve again.",
}

approvers := {a.user |
	some a in input.approvals
	a.state == "approved"
	a.user != input.pull_request.author
}

deny contains {"message": msg} if {
	count(approvers) < settings.min_approvals
	msg := sprintf("%d approval(s) from reviewers other than the author, %d required", [count(approvers), settings.min_approvals])
}

deny contains {"message": msg} if {
	some a in input.approvals
	a.state == "changes_requested"
	msg := sprintf("%s requested changes", [a.user])
}
