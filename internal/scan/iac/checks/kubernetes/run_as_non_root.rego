package rampart.checks.kubernetes.run_as_non_root

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-003",
	"severity": "medium",
	"title": "Container may run as root",
	"remediation": "Set securityContext.runAsNonRoot: true (on the pod or the container), or runAsUser to a non-zero id.",
}

non_root(c) if k8s.setting(c, "runAsNonRoot").value == true

non_root(c) if k8s.setting(c, "runAsUser").value > 0

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	not non_root(c)
	path := array.concat(c.path, ["securityContext", "runAsNonRoot"])
	msg := sprintf("container %q of %s sets neither runAsNonRoot: true nor a non-zero runAsUser", [c.name, c.doc.resource])
}
