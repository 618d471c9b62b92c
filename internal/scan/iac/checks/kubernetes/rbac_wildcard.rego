package rampart.checks.kubernetes.rbac_wildcard

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-022",
	"severity": "high",
	"title": "RBAC rule grants every verb or every resource",
	"remediation": "List the verbs and resources the subject needs instead of \"*\".",
}

deny contains {"message": msg, "line": k8s.line(doc, ["rules", i, field]), "resource": sprintf("%s/rules/%d/%s", [doc.resource, i, field])} if {
	some doc in input.documents
	doc.object.kind in {"Role", "ClusterRole"}
	some i, rule in doc.object.rules
	some field in ["verbs", "resources"]
	"*" in rule[field]
	msg := sprintf("rule %d of %s grants all %s (\"*\")", [i + 1, doc.resource, field])
}
