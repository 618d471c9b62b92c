package rampart.gates.runtime.limits

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-RUN-004",
	"title": "Running containers have CPU and memory limits",
	"remediation": "Redeploy the workload with resources.limits.cpu and resources.limits.memory on every container.",
	"mode": "warn",
}

deny contains v if {
	some wl in input.workloads
	some v in w.limits(wl.object)
}
