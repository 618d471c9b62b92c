package rampart.checks.kubernetes.run_as_user_root

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-004",
	"severity": "high",
	"title": "Container runs as user 0 (root)",
	"remediation": "Set runAsUser to a non-zero user id that the image expects, and runAsNonRoot: true.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, s.path), "resource": c.resource} if {
	some c in k8s.containers
	s := k8s.setting(c, "runAsUser")
	s.value == 0
	msg := sprintf("container %q of %s runs as user 0 (root)", [c.name, c.doc.resource])
}
