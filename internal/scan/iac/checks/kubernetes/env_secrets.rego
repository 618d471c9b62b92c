package rampart.checks.kubernetes.env_secrets

import data.rampart.lib.kubernetes as k8s
import data.rampart.lib.secrets

metadata := {
	"id": "RMP-K8S-016",
	"severity": "high",
	"title": "Secret in a container environment variable",
	"remediation": "Store the value in a Secret and refer to it with env[].valueFrom.secretKeyRef (or envFrom.secretRef).",
}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": sprintf("%s/env/%s", [c.resource, e.name])} if {
	some c in k8s.containers
	some i, e in c.container.env
	secrets.secret_name(e.name)
	is_string(e.value)
	e.value != ""
	path := array.concat(c.path, ["env", i])
	msg := sprintf("container %q of %s sets %s to a literal value", [c.name, c.doc.resource, e.name])
}
