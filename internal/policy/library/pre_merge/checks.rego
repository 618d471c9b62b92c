package rampart.gates.pre_merge.checks

import data.rampart.config.settings

metadata := {
	"id": "RMP-PR-001",
	"title": "Required checks pass",
	"remediation": "Fix what the failing check reports and push again; pending checks must finish first.",
}

deny contains {"message": msg} if {
	some c in input.checks
	not c.status in {"success", "skipped"}
	msg := sprintf("check %s is %s", [c.name, c.status])
}

deny contains {"message": msg, "fix": fix} if {
	some name in settings.required_checks
	not name in {c.name | some c in input.checks}
	msg := sprintf("required check %s has not reported", [name])
	fix := sprintf("Run the pipeline that reports %s on this pull request.", [name])
}
