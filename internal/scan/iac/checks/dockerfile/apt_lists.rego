package rampart.checks.dockerfile.apt_lists

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-009",
	"severity": "low",
	"title": "apt-get lists are left in the image",
	"remediation": "End the same RUN with rm -rf /var/lib/apt/lists/*, or mount a cache at /var/lib/apt/lists.",
}

cached(i) if {
	some f in i.flags
	contains(f, "/var/lib/apt")
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s apt-get update", [df.where(i)])} if {
	some i in df.runs
	s := df.script(i)
	regex.match(`\bapt-get\s+(-\S+\s+)*update\b`, s)
	not regex.match(`rm\s+(-\S+\s+)*/var/lib/apt/lists`, s)
	not cached(i)
	msg := "RUN runs apt-get update but leaves /var/lib/apt/lists in the layer"
}
