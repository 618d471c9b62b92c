package rampart.checks.dockerfile.healthcheck

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-012",
	"severity": "low",
	"title": "Image has no HEALTHCHECK",
	"remediation": "Add a HEALTHCHECK that probes the service (or rely on the orchestrator's probes and say so with HEALTHCHECK NONE).",
}

deny contains {"message": msg, "line": df.final_stage.line, "resource": "final stage HEALTHCHECK"} if {
	not df.final_stage.base_scratch
	checks := [i | some s in df.final_chain; some i in s.instructions; i.cmd == "healthcheck"]
	count(checks) == 0
	msg := sprintf("the final stage (FROM %s) has no HEALTHCHECK", [df.final_stage.base])
}
