package rampart.gates.pre_deploy.sbom

metadata := {
	"id": "RMP-DEP-004",
	"title": "Images have an SBOM",
	"remediation": "Generate an SBOM when the image is built (the build-image step attaches a CycloneDX SBOM) and push it with the image.",
}

deny contains {"message": msg, "image": img.reference} if {
	some img in input.images
	not object.get(img, ["sbom", "present"], false) == true
	msg := sprintf("image %s has no SBOM attached", [img.reference])
}
