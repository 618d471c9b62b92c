package rampart.gates.pre_deploy.vulnerabilities

import data.rampart.config.settings
import data.rampart.lib.evidence

metadata := {
	"id": "RMP-DEP-003",
	"title": "No fixable vulnerability at or above the threshold",
	"remediation": "Upgrade the package to the fixed version and rebuild the image; if the vulnerable code cannot be reached, record an exception for the advisory with an owner, a reason and an expiry (rampart exception add).",
}

deny contains {"message": msg, "image": img.reference, "ids": evidence.vuln_ids(v), "fix": fix} if {
	some img in input.images
	some v in evidence.fixable(img)
	msg := sprintf("image %s: %s (threshold: %s)", [img.reference, evidence.vuln_text(v), settings.vulnerability_threshold])
	fix := sprintf("Upgrade %s to %s or later and rebuild %s, or record an exception for %s with an owner, a reason and an expiry.", [object.get(v, "package", "the package"), v.fixed_version, img.reference, v.id])
}
