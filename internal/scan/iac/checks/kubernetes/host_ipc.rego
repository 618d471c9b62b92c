package rampart.checks.kubernetes.host_ipc

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-011",
	"severity": "high",
	"title": "Pod shares the node's IPC namespace",
	"remediation": "Remove hostIPC: true from the pod spec.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": pod.doc.resource} if {
	some pod in k8s.pods
	pod.spec.hostIPC == true
	path := array.concat(pod.path, ["hostIPC"])
	msg := sprintf("%s sets hostIPC: true", [pod.doc.resource])
}
