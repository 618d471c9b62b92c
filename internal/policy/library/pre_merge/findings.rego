package rampart.gates.pre_merge.findings

import data.rampart.config.settings
import data.rampart.lib.severity

metadata := {
	"id": "RMP-PR-003",
	"title": "No new findings at or above the threshold",
	"remediation": "Fix what the finding reports in this pull request; if it is a false positive, suppress it in .rampart/ignore.yaml with an owner, a reason and an expiry.",
}

deny contains {"message": msg, "ids": ids, "path": path, "fingerprint": object.get(f, "fingerprint", ""), "fix": fix} if {
	some f in input.findings
	f.kind != "secret"
	not f.suppressed
	severity.at_least(f.severity, settings.new_findings_threshold)
	ids := array.concat([f.rule_id], object.get(f, ["vulnerability", "aliases"], []))
	path := object.get(f, ["location", "path"], "")
	msg := sprintf("new %s finding %s (%s) in %s", [f.kind, f.rule_id, f.severity, path])
	fix := object.get(f, "remediation", metadata.remediation)
}
