package rampart.gates.admission.limits

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-002",
	"title": "Containers set CPU and memory limits",
	"remediation": "Set resources.limits.cpu and resources.limits.memory on every container.",
}

deny contains v if {
	some v in w.limits(w.admitted)
}
