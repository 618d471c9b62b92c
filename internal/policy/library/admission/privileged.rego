package rampart.gates.admission.privileged

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-003",
	"title": "No privileged containers",
	"remediation": "Remove securityContext.privileged: true; grant only the Linux capabilities the container needs (securityContext.capabilities.add).",
}

deny contains v if {
	some v in w.privileged(w.admitted)
}
