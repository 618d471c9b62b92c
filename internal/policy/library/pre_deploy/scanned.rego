package rampart.gates.pre_deploy.scanned

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-DEP-009",
	"title": "Images have been scanned",
	"remediation": "Wait for the registry's scan of the image to finish (or rescan it), then deploy again.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	not evidence.scanned(img)
	msg := sprintf("image %s has not been scanned (scan status: %s)", [img.reference, object.get(img, ["scan", "status"], "none")])
}
