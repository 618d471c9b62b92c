package rampart.checks.kubernetes.cluster_admin

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-023",
	"severity": "high",
	"title": "Binding grants cluster-admin",
	"remediation": "Bind a Role or ClusterRole that grants only what the subjects need.",
}

deny contains {"message": msg, "line": k8s.line(doc, ["roleRef", "name"]), "resource": doc.resource} if {
	some doc in input.documents
	doc.object.kind in {"ClusterRoleBinding", "RoleBinding"}
	doc.object.roleRef.name == "cluster-admin"
	subjects := [sprintf("%v %v", [s.kind, s.name]) | some s in object.get(doc.object, "subjects", [])]
	msg := sprintf("%s grants cluster-admin to %s", [doc.resource, concat(", ", subjects)])
}
