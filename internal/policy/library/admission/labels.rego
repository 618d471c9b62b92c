package rampart.gates.admission.labels

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-008",
	"title": "Workloads carry the required labels",
	"remediation": "Add the missing labels to the object's metadata (required_labels in policy.yaml).",
	"mode": "warn",
}

deny contains v if {
	some v in w.labels(w.admitted)
}
