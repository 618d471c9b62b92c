package rampart.checks.kubernetes.default_namespace

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-017",
	"severity": "low",
	"title": "Object placed in the default namespace",
	"remediation": "Give each application a namespace of its own, so that policies, quotas and RBAC can be scoped to it.",
}

deny contains {"message": msg, "line": k8s.line(doc, ["metadata", "namespace"]), "resource": doc.resource} if {
	some doc in input.documents
	doc.object.metadata.namespace == "default"
	msg := sprintf("%s is placed in the default namespace", [doc.resource])
}
