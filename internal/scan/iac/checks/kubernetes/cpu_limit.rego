package rampart.checks.kubernetes.cpu_limit

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-006",
	"severity": "low",
	"title": "Container has no CPU limit",
	"remediation": "Set resources.limits.cpu so that one container cannot starve the others on its node.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	c.field != "ephemeralContainers"
	not c.container.resources.limits.cpu
	path := array.concat(c.path, ["resources", "limits", "cpu"])
	msg := sprintf("container %q of %s has no CPU limit", [c.name, c.doc.resource])
}
