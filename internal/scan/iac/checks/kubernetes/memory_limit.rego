package rampart.checks.kubernetes.memory_limit

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-005",
	"severity": "medium",
	"title": "Container has no memory limit",
	"remediation": "Set resources.limits.memory so that one container cannot exhaust the node's memory.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	c.field != "ephemeralContainers"
	not c.container.resources.limits.memory
	path := array.concat(c.path, ["resources", "limits", "memory"])
	msg := sprintf("container %q of %s has no memory limit", [c.name, c.doc.resource])
}
