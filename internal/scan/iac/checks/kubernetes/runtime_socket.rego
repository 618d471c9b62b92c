package rampart.checks.kubernetes.runtime_socket

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-024",
	"severity": "critical",
	"title": "Pod mounts the container runtime socket",
	"remediation": "Do not mount the Docker, containerd or CRI-O socket: whoever reaches it controls every container on the node.",
}

deny contains {"message": msg, "line": k8s.line(pod.doc, path), "resource": sprintf("%s/volumes/%v", [pod.doc.resource, v.name])} if {
	some pod in k8s.pods
	some i, v in pod.spec.volumes
	p := trim_right(v.hostPath.path, "/")
	regex.match(`(^|/)(docker|containerd|crio|cri-dockerd|podman)(/[^/]*)?\.sock$|^/(var/)?run/(docker|containerd|crio|podman)$`, p)
	path := array.concat(pod.path, ["volumes", i, "hostPath", "path"])
	msg := sprintf("%s mounts the container runtime socket %s", [pod.doc.resource, p])
}
