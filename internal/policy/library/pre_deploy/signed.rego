package rampart.gates.pre_deploy.signed

import data.rampart.config.settings
import data.rampart.lib.evidence

metadata := {
	"id": "RMP-DEP-001",
	"title": "Images are signed with Rampart's key",
	"remediation": "Sign the image with Rampart's key in the pipeline that built it (the build-image step does), push the signature to the registry, and deploy the signed digest.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	not evidence.signed(img)
	msg := sprintf("image %s carries no verified signature by a trusted key (%s)", [img.reference, concat(", ", settings.trusted_keys)])
}
