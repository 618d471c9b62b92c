package rampart.checks.kubernetes.drop_all

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-015",
	"severity": "low",
	"title": "Container does not drop all capabilities",
	"remediation": "Set securityContext.capabilities.drop: [ALL] and add back only the capabilities the container needs.",
}

drops_all(c) if {
	some cap in c.container.securityContext.capabilities.drop
	upper(cap) in {"ALL", "CAP_ALL"}
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	not drops_all(c)
	path := array.concat(c.path, ["securityContext", "capabilities", "drop"])
	msg := sprintf("container %q of %s keeps the default capabilities (drop ALL is missing)", [c.name, c.doc.resource])
}
