package rampart.checks.dockerfile.env_secrets

import data.rampart.lib.dockerfile as df
import data.rampart.lib.secrets

metadata := {
	"id": "RMP-DF-004",
	"severity": "high",
	"title": "Secret set with ENV",
	"remediation": "Pass secrets at build time with RUN --mount=type=secret and at run time from the orchestrator's secret store; ENV values are stored in the image for anyone who pulls it.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s", [df.where(i), v.key])} if {
	some i in input.instructions
	i.cmd == "env"
	some v in i.vars
	secrets.secret_name(v.key)
	v.value != ""
	msg := sprintf("ENV %s is stored in the image", [v.key])
}
