package rampart.checks.kubernetes.host_pid

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-010",
	"severity": "high",
	"title": "Pod shares the node's process (PID) namespace",
	"remediation": "Remove hostPID: true from the pod spec.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": pod.doc.resource} if {
	some pod in k8s.pods
	pod.spec.hostPID == true
	path := array.concat(pod.path, ["hostPID"])
	msg := sprintf("%s sets hostPID: true", [pod.doc.resource])
}
