package rampart.gates.admission.latest

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-007",
	"title": "No :latest or untagged images",
	"remediation": "Reference images by digest (name@sha256:…) or by a fixed version tag.",
}

deny contains v if {
	some v in w.latest(w.admitted)
}
