package rampart.checks.dockerfile.sudo

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-010",
	"severity": "medium",
	"title": "RUN uses sudo",
	"remediation": "Run the step as root with USER root before it and switch back to the unprivileged user after; do not install sudo in images.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s sudo", [df.where(i)])} if {
	some i in df.runs
	regex.match(`(^|[\s;&|(])sudo\s`, df.script(i))
	msg := "RUN calls sudo"
}
