package rampart.gates.admission.host_path

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-004",
	"title": "No hostPath volumes",
	"remediation": "Use a persistentVolumeClaim, configMap, secret or emptyDir volume instead of hostPath.",
}

deny contains v if {
	some v in w.host_path(w.admitted)
}
