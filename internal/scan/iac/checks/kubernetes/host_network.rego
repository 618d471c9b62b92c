package rampart.checks.kubernetes.host_network

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-009",
	"severity": "high",
	"title": "Pod shares the node's network namespace",
	"remediation": "Remove hostNetwork: true from the pod spec.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": pod.doc.resource} if {
	some pod in k8s.pods
	pod.spec.hostNetwork == true
	path := array.concat(pod.path, ["hostNetwork"])
	msg := sprintf("%s sets hostNetwork: true", [pod.doc.resource])
}
