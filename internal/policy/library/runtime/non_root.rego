package rampart.gates.runtime.non_root

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-RUN-002",
	"title": "Running workloads run as a non-root user",
	"remediation": "Redeploy the workload with securityContext.runAsNonRoot: true and a non-root image user.",
}

deny contains v if {
	some wl in input.workloads
	some v in w.root(wl.object)
}
