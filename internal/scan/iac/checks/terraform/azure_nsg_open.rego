package rampart.checks.terraform.azure_nsg_open

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-003",
	"severity": "critical",
	"title": "Azure network security rule opens SSH or RDP to the internet",
	"remediation": "Restrict source_address_prefix to known ranges, or use Azure Bastion or just-in-time VM access.",
}

ports := {22: "SSH", 3389: "RDP"}

# rules yields every network security rule: standalone resources and the
# security_rule blocks of a network security group.
rules contains {"rule": b, "address": b.address} if some b in tf.resources("azurerm_network_security_rule")

rules contains {"rule": r, "address": b.address} if {
	some b in tf.resources("azurerm_network_security_group")
	some r in tf.nested(b, "security_rule")
}

open_source(r) if lower(tf.value(r, "source_address_prefix")) in {lower(c) | some c in tf.world_cidrs}

open_source(r) if {
	some p in tf.value(r, "source_address_prefixes")
	lower(p) in {lower(c) | some c in tf.world_cidrs}
}

port_specs(r) := array.concat(
	[s | s := tf.value(r, "destination_port_range")],
	[s | some s in tf.value(r, "destination_port_ranges")],
)

admits(rule, port) if {
	some spec in port_specs(rule)
	is_string(spec)
	tf.covers_spec(spec, port)
}

deny contains {"message": msg, "line": x.rule.line, "resource": sprintf("%s/%v", [x.address, object.get(x.rule.attributes, ["name", "value"], "")])} if {
	some x in rules
	lower(tf.value(x.rule, "direction")) == "inbound"
	lower(tf.value(x.rule, "access")) == "allow"
	open_source(x.rule)
	hits := sort([p | some p, _ in ports; admits(x.rule, p)])
	count(hits) > 0
	names := [sprintf("%s (port %d)", [ports[p], p]) | some p in hits]
	msg := sprintf("%s allows inbound %s from the internet", [x.address, concat(" and ", names)])
}
