package rampart.checks.dockerfile.user_root

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-001",
	"severity": "high",
	"title": "Image runs as root (USER root)",
	"remediation": "End the final stage with USER and an unprivileged user (create it with useradd or adduser if the base image has none).",
}

deny contains {"message": msg, "line": last.line, "resource": sprintf("stage %d USER", [last.stage])} if {
	users := [i | some i in df.final_stage.instructions; i.cmd == "user"]
	last := users[count(users) - 1]
	user := split(trim_space(last.value), ":")[0]
	user in {"root", "0"}
	msg := sprintf("the final stage switches to USER %s and nothing switches back", [last.value])
}
