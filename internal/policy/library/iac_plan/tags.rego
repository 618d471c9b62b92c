package rampart.gates.iac_plan.tags

import data.rampart.config.settings
import data.rampart.lib.plan

metadata := {
	"id": "RMP-IAC-002",
	"title": "Taggable resources carry the required tags",
	"remediation": "Add the missing tags to the resource (or to the provider's default_tags).",
	"mode": "warn",
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	after := rc.change.after
	"tags" in object.keys(after)
	some t in settings.required_tags
	not has_tag(after, t)
	msg := sprintf("%s lacks the tag %s", [rc.address, t])
}

has_tag(after, t) if after.tags_all[t]

has_tag(after, t) if after.tags[t]
