package rampart.checks.dockerfile.expose_ssh

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-011",
	"severity": "medium",
	"title": "Image exposes SSH (port 22)",
	"remediation": "Do not run an SSH server in a container; use docker exec or kubectl exec to get a shell.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s 22", [df.where(i)])} if {
	some i in input.instructions
	i.cmd == "expose"
	some a in i.args
	split(a, "/")[0] == "22"
	msg := "EXPOSE 22 advertises an SSH server"
}
