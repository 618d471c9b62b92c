package rampart.checks.dockerfile.no_user

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-002",
	"severity": "medium",
	"title": "Image has no USER: it runs as root",
	"remediation": "Add USER with an unprivileged user to the final stage.",
}

deny contains {"message": msg, "line": df.final_stage.line, "resource": "final stage USER"} if {
	not df.final_stage.base_scratch
	users := [i | some s in df.final_chain; some i in s.instructions; i.cmd == "user"]
	count(users) == 0
	msg := sprintf("the final stage (FROM %s) never sets USER, so containers run as root", [df.final_stage.base])
}
