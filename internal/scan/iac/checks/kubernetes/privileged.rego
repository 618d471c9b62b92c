package rampart.checks.kubernetes.privileged

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-001",
	"severity": "critical",
	"title": "Privileged container",
	"remediation": "Remove securityContext.privileged (or set it to false) and grant only the capabilities the container needs.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	c.container.securityContext.privileged == true
	path := array.concat(c.path, ["securityContext", "privileged"])
	msg := sprintf("container %q of %s runs privileged, with every capability and device of the node", [c.name, c.doc.resource])
}
