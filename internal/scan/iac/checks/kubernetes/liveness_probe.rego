package rampart.checks.kubernetes.liveness_probe

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-018",
	"severity": "low",
	"title": "Container has no liveness probe",
	"remediation": "Add a livenessProbe (httpGet, tcpSocket, grpc or exec) to the container.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, c.path), "resource": c.resource} if {
	some c in k8s.app_containers
	not c.doc.object.kind in k8s.batch_kinds
	not c.container.livenessProbe
	msg := sprintf("container %q of %s has no liveness probe: the kubelet cannot restart it when it hangs", [c.name, c.doc.resource])
}
