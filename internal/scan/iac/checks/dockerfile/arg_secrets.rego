package rampart.checks.dockerfile.arg_secrets

import data.rampart.lib.dockerfile as df
import data.rampart.lib.secrets

metadata := {
	"id": "RMP-DF-005",
	"severity": "medium",
	"title": "Secret passed with ARG",
	"remediation": "Use RUN --mount=type=secret instead: build arguments are recorded in the image history.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s", [df.where(i), v.key])} if {
	some i in input.instructions
	i.cmd == "arg"
	some v in i.vars
	secrets.secret_name(v.key)
	msg := sprintf("ARG %s would be recorded in the image history", [v.key])
}
