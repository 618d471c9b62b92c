package rampart.gates.iac_plan.destroy

import data.rampart.lib.plan

metadata := {
	"id": "RMP-IAC-001",
	"title": "Plans do not delete resources in protected environments",
	"remediation": "Change the configuration so that the resource is kept (for a replacement, add lifecycle { create_before_destroy = true } or fix the attribute that forces it); a planned removal needs an exception for this policy and the resource, with an owner, a reason and an expiry.",
}

deny contains {"message": msg, "resource": rc.address, "ids": [rc.address]} if {
	plan.protected
	some rc in input.plan.resource_changes
	"delete" in rc.change.actions
	msg := sprintf("the plan %s %s in protected environment %s", [verb(rc), rc.address, plan.environment])
}

verb(rc) := "replaces" if "create" in rc.change.actions

else := "deletes"
