package rampart.checks.kubernetes.requests

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-007",
	"severity": "low",
	"title": "Container has no CPU or memory request",
	"remediation": "Set resources.requests.cpu and resources.requests.memory so that the scheduler reserves what the container needs.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	c.field != "ephemeralContainers"
	missing := [r | some r in ["cpu", "memory"]; not c.container.resources.requests[r]]
	count(missing) > 0
	path := array.concat(c.path, ["resources", "requests"])
	msg := sprintf("container %q of %s requests no %s", [c.name, c.doc.resource, concat(" or ", missing)])
}
