package rampart.gates.pre_deploy.secrets

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-DEP-005",
	"title": "No secrets in images",
	"remediation": "Remove the secret from the image (inject it at start from the vault instead), revoke it, and rebuild.",
}

deny contains {"message": msg, "image": img.reference, "ids": [s.rule_id], "path": object.get(s, "path", ""), "fingerprint": object.get(s, "fingerprint", "")} if {
	some img in input.images
	some s in evidence.secrets(img)
	msg := sprintf("image %s holds a secret (%s) in %s", [img.reference, s.rule_id, object.get(s, "path", "an unknown file")])
}
