package rampart.gates.admission.privilege_escalation

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-009",
	"title": "Containers do not allow privilege escalation",
	"remediation": "Set securityContext.allowPrivilegeEscalation: false on every container.",
	"mode": "warn",
}

deny contains v if {
	some v in w.escalation(w.admitted)
}
