package rampart.gates.iac_plan.open_ingress

import data.rampart.lib.plan

metadata := {
	"id": "RMP-IAC-003",
	"title": "No ingress from the whole internet except to web ports",
	"remediation": "Restrict the rule's source to the networks that need it (a VPN, a bastion, the load balancer's security group); only ports 80 and 443 may be open to 0.0.0.0/0 or ::/0.",
}

world := {"0.0.0.0/0", "::/0", "*", "Internet", "Any"}

web_only(from, to) if {
	from == to
	from in {80, 443}
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type == "aws_security_group"
	some rule in object.get(rc.change.after, "ingress", [])
	open(array.concat(object.get(rule, "cidr_blocks", []), object.get(rule, "ipv6_cidr_blocks", [])))
	not web_only(object.get(rule, "from_port", -1), object.get(rule, "to_port", -1))
	msg := sprintf("%s admits %v-%v/%s from the whole internet", [rc.address, rule.from_port, rule.to_port, rule.protocol])
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type == "aws_security_group_rule"
	a := rc.change.after
	a.type == "ingress"
	open(array.concat(object.get(a, "cidr_blocks", []), object.get(a, "ipv6_cidr_blocks", [])))
	not web_only(object.get(a, "from_port", -1), object.get(a, "to_port", -1))
	msg := sprintf("%s admits %v-%v/%s from the whole internet", [rc.address, a.from_port, a.to_port, a.protocol])
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type == "aws_vpc_security_group_ingress_rule"
	a := rc.change.after
	open([object.get(a, "cidr_ipv4", ""), object.get(a, "cidr_ipv6", "")])
	not web_only(object.get(a, "from_port", -1), object.get(a, "to_port", -1))
	msg := sprintf("%s admits ports %v-%v from the whole internet", [rc.address, object.get(a, "from_port", "all"), object.get(a, "to_port", "all")])
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type == "azurerm_network_security_rule"
	a := rc.change.after
	lower(a.direction) == "inbound"
	lower(a.access) == "allow"
	open([object.get(a, "source_address_prefix", "")])
	not object.get(a, "destination_port_range", "") in {"80", "443"}
	msg := sprintf("%s admits port %v from the whole internet", [rc.address, object.get(a, "destination_port_range", "any")])
}

open(sources) if {
	some s in sources
	s in world
}
