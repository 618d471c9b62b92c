package rampart.gates.admission.host_namespaces

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-005",
	"title": "No host network, PID or IPC namespaces",
	"remediation": "Remove hostNetwork, hostPID and hostIPC from the pod spec; expose ports through a Service instead of the node's network.",
}

deny contains v if {
	some v in w.host_namespaces(w.admitted)
}
