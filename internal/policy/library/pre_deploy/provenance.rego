package rampart.gates.pre_deploy.provenance

import data.rampart.lib.evidence

metadata := {
	"id": "RMP-DEP-002",
	"title": "Images have SLSA provenance from a protected branch of a Rampart repository",
	"remediation": "Build the image in a Rampart pipeline run on a protected branch (e.g. main) so that it gets a signed SLSA v1 provenance attestation; images built elsewhere or from feature branches cannot be deployed here.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	problem := evidence.provenance_problem(img)
	msg := sprintf("image %s %s", [img.reference, problem])
}
