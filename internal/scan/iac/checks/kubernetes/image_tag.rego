package rampart.checks.kubernetes.image_tag

import data.rampart.lib.image
import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-012",
	"severity": "medium",
	"title": "Container image is untagged or :latest",
	"remediation": "Pin the image to a version tag, or better a digest (image@sha256:…), so that every rollout runs the image that was tested.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	is_string(c.container.image)
	image.unpinned(c.container.image)
	path := array.concat(c.path, ["image"])
	msg := sprintf("container %q of %s uses image %q, which names no fixed version", [c.name, c.doc.resource, c.container.image])
}
