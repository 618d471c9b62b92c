package rampart.checks.kubernetes.automount_token

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-021",
	"severity": "low",
	"title": "Pod mounts a service account token it may not need",
	"remediation": "Set automountServiceAccountToken: false in the pod spec unless the application calls the Kubernetes API.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": pod.doc.resource} if {
	some pod in k8s.pods
	not pod.spec.automountServiceAccountToken == false
	path := array.concat(pod.path, ["automountServiceAccountToken"])
	msg := sprintf("%s mounts its service account token automatically", [pod.doc.resource])
}
