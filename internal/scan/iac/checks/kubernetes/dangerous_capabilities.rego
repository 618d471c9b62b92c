package rampart.checks.kubernetes.dangerous_capabilities

import data.rampart.lib.kubernetes as k8s

metadata := {
	"id": "RMP-K8S-014",
	"severity": "high",
	"title": "Container adds a dangerous capability",
	"remediation": "Remove ALL, SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, DAC_READ_SEARCH and BPF from securityContext.capabilities.add.",
}

dangerous := {"ALL", "SYS_ADMIN", "NET_ADMIN", "SYS_PTRACE", "SYS_MODULE", "DAC_READ_SEARCH", "BPF"}

deny contains {"message": msg, "line": k8s.line(c.doc, path), "resource": sprintf("%s/%s", [c.resource, name])} if {
	some c in k8s.containers
	some i, cap in c.container.securityContext.capabilities.add
	name := trim_prefix(upper(cap), "CAP_")
	name in dangerous
	path := array.concat(c.path, ["securityContext", "capabilities", "add", i])
	msg := sprintf("container %q of %s adds capability %s", [c.name, c.doc.resource, name])
}
