package rampart.checks.kubernetes.privilege_escalation

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-002",
	"severity": "medium",
	"title": "Container allows privilege escalation",
	"remediation": "Set securityContext.allowPrivilegeEscalation: false on the container.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	not c.container.securityContext.allowPrivilegeEscalation == false
	path := array.concat(c.path, ["securityContext", "allowPrivilegeEscalation"])
	msg := sprintf("container %q of %s does not set allowPrivilegeEscalation: false", [c.name, c.doc.resource])
}
