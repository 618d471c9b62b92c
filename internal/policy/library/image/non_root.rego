package rampart.gates.image.non_root

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-IMG-005",
	"title": "Images run as a non-root user",
	"remediation": "Add a USER instruction with a non-root user (e.g. USER 65532) to the Dockerfile's final stage.",
	"mode": "warn",
}

deny contains {"message": msg, "image": input.image.reference} if {
	evidence.user_is_root(input.image)
	msg := sprintf("image %s runs as root (config user %q)", [input.image.reference, object.get(input.image, ["config", "user"], "")])
}
