package rampart.gates.image.vulnerabilities

import data.rampart.config.settings
import data.rampart.lib.evidence

metadata := {
	"id": "RMP-IMG-002",
	"title": "No fixable vulnerability at or above the threshold is pulled",
	"remediation": "Upgrade the package to the fixed version and push a rebuilt image, or record an exception for the advisory and image with an owner, a reason and an expiry.",
}

deny contains {"message": msg, "image": input.image.reference, "ids": evidence.vuln_ids(v)} if {
	input.action == "pull"
	some v in evidence.fixable(input.image)
	msg := sprintf("image %s: %s (threshold: %s)", [input.image.reference, evidence.vuln_text(v), settings.vulnerability_threshold])
}
