package rampart.gates.pre_deploy.registries

import data.rampart.lib.images

metadata := {
	"id": "RMP-DEP-006",
	"title": "Images come from allowed registries",
	"remediation": "Push the image to Rampart's registry (or an allowed one) and deploy it from there; the list is allowed_registries in the policy repository's policy.yaml.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	not images.allowed_registry(img.reference)
	msg := sprintf("image %s comes from %s, which is not an allowed registry (allowed: %s)", [img.reference, images.registry(img.reference), images.allowed_text])
}
