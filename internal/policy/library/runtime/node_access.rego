package rampart.gates.runtime.node_access

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-RUN-001",
	"title": "Running workloads have no privileged access to the node",
	"remediation": "Redeploy the workload without privileged containers, hostPath volumes and host namespaces; find out how it was admitted (an exception, a webhook outage) in the decision log.",
}

deny contains v if {
	some wl in input.workloads
	some v in array.concat(array.concat(w.privileged(wl.object), w.host_path(wl.object)), w.host_namespaces(wl.object))
}
