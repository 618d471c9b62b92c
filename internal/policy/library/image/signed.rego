package rampart.gates.image.signed

import data.rampart.config.settings
import data.rampart.lib.evidence

metadata := {
	"id": "RMP-IMG-004",
	"title": "Pulled images are signed with Rampart's key",
	"remediation": "Sign the image with Rampart's key in the pipeline that built it.",
	"mode": "warn",
}

deny contains {"message": msg, "image": input.image.reference} if {
	input.action == "pull"
	not evidence.signed(input.image)
	msg := sprintf("image %s carries no verified signature by a trusted key (%s)", [input.image.reference, concat(", ", settings.trusted_keys)])
}
