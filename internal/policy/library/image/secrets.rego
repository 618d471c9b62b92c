package rampart.gates.image.secrets

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-IMG-003",
	"title": "Images hold no secrets",
	"remediation": "Remove the secret from the image (inject it at start from the vault instead), revoke it, and push a rebuilt image.",
}

deny contains {"message": msg, "image": input.image.reference, "ids": [s.rule_id], "path": object.get(s, "path", ""), "fingerprint": object.get(s, "fingerprint", "")} if {
	some s in evidence.secrets(input.image)
	msg := sprintf("image %s holds a secret (%s) in %s", [input.image.reference, s.rule_id, object.get(s, "path", "an unknown file")])
}
