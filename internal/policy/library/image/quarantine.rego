package rampart.gates.image.quarantine

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-IMG-001",
	"title": "Images are quarantined until scanned",
	"remediation": "Wait until the registry has scanned the image after its push; pulls are refused until then.",
}

deny contains {"message": msg, "image": input.image.reference} if {
	input.action == "pull"
	not evidence.scanned(input.image)
	msg := sprintf("image %s is quarantined: its scan is %s", [input.image.reference, object.get(input.image, ["scan", "status"], "not started")])
}
