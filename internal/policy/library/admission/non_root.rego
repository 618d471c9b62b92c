package rampart.gates.admission.non_root

import data.rampart.lib.workloads as w

metadata := {
	"id": "RMP-ADM-001",
	"title": "Workloads run as a non-root user",
	"remediation": "Set securityContext.runAsNonRoot: true (and a runAsUser above 0) in the pod or container spec, and build the image with a non-root USER.",
}

deny contains v if {
	some v in w.root(w.admitted)
}
