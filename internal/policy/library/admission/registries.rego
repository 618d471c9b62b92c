package rampart.gates.admission.registries

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-006",
	"title": "Images come from allowed registries",
	"remediation": "Push the image to Rampart's registry (or an allowed one) and reference it from there; the list is allowed_registries in the policy repository's policy.yaml.",
}

deny contains v if {
	some v in w.registries(w.admitted)
}
