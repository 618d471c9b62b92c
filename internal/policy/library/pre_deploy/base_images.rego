package rampart.gates.pre_deploy.base_images

import data.rampart.config.settings
import data.rampart.lib.images

metadata := {
	"id": "RMP-DEP-008",
	"title": "Images are built on approved base images",
	"remediation": "Rebuild the image FROM one of the approved base images (approved_base_images in policy.yaml).",
}

deny contains {"message": msg, "image": img.reference} if {
	count(settings.approved_base_images) > 0
	some img in input.images
	base := object.get(img, "base_image", "")
	not images.approved_base(base)
	msg := sprintf("image %s is built on %s, which is not an approved base image (%s)", [img.reference, base_text(base), concat(", ", settings.approved_base_images)])
}

base_text("") := "an unknown base image"

base_text(b) := b if b != ""
