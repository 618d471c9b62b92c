package rampart.checks.kubernetes.readiness_probe

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-019",
	"severity": "low",
	"title": "Container has no readiness probe",
	"remediation": "Add a readinessProbe (httpGet, tcpSocket, grpc or exec) to the container.",
}

deny contains {"message": msg, "line": k8s.line(c.doc, c.path), "resource": c.resource} if {
	some c in k8s.app_containers
	not c.doc.object.kind in k8s.batch_kinds
	not c.container.readinessProbe
	msg := sprintf("container %q of %s has no readiness probe: it receives traffic before it is ready", [c.name, c.doc.resource])
}
