package rampart.gates.runtime.registries

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-RUN-003",
	"title": "Running images come from allowed registries",
	"remediation": "Redeploy the workload with images from Rampart's registry or an allowed one.",
}

deny contains v if {
	some wl in input.workloads
	some v in w.registries(wl.object)
}
