package rampart.checks.kubernetes.host_path

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-008",
	"severity": "high",
	"title": "Pod mounts a hostPath volume",
	"remediation": "Use a persistentVolumeClaim, configMap, secret or emptyDir volume instead of a directory of the node.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": sprintf("%s/volumes/%s", [pod.doc.resource, name])} if {
	some pod in k8s.pods
	some i, v in pod.spec.volumes
	v.hostPath
	name := object.get(v, "name", sprintf("%v", [i]))
	path := array.concat(pod.path, ["volumes", i])
	msg := sprintf("volume %q of %s mounts %q from the node", [name, pod.doc.resource, object.get(v.hostPath, "path", "")])
}
