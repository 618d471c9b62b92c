package rampart.gates.image.base_images

import data.rampart.config.settings
import data.rampart.lib.images

metadata := {
	"id": "RMP-IMG-006",
	"title": "Pushed images are built on approved base images",
	"remediation": "Rebuild the image FROM one of the approved base images (approved_base_images in policy.yaml).",
	"mode": "warn",
}

deny contains {"message": msg, "image": input.image.reference} if {
	input.action == "push"
	count(settings.approved_base_images) > 0
	base := object.get(input.image, "base_image", "")
	not images.approved_base(base)
	msg := sprintf("image %s is built on %q, which is not an approved base image", [input.image.reference, base])
}
