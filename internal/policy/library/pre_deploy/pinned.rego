package rampart.gates.pre_deploy.pinned

import data.rampart.lib.images

metadata := {
	"id": "RMP-DEP-007",
	"title": "Images are deployed by digest, never :latest",
	"remediation": "Reference the image by its digest (name@sha256:…) in the release; tags such as latest move, so what was checked is not what would run.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	images.tag(img.reference) == "latest"
	msg := sprintf("image %s uses the tag latest", [img.reference])
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	object.get(img, "digest", "") == ""
	msg := sprintf("the release names no digest for image %s", [img.reference])
}
