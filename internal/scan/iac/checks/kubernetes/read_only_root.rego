package rampart.checks.kubernetes.read_only_root

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-013",
	"severity": "low",
	"title": "Container root filesystem is writable",
	"remediation": "Set securityContext.readOnlyRootFilesystem: true and mount emptyDir volumes where the application must write.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": c.resource} if {
	some c in k8s.containers
	not c.container.securityContext.readOnlyRootFilesystem == true
	path := array.concat(c.path, ["securityContext", "readOnlyRootFilesystem"])
	msg := sprintf("container %q of %s can write to its root filesystem", [c.name, c.doc.resource])
}
