# Helpers for Terraform checks.
package rampart.lib.terraform

# resources is the set of resource blocks of the given type.
resources(type) := {b | some b in input.blocks; b.type == "resource"; b.labels[0] == type}

# data_sources is the set of data blocks of the given type.
data_sources(type) := {b | some b in input.blocks; b.type == "data"; b.labels[0] == type}

# is_true holds when the attribute is the constant true.
is_true(b, name) if b.attributes[name].value == true

# is_false holds when the attribute is the constant false.
is_false(b, name) if {
	b.attributes[name].known
	b.attributes[name].value == false
}

# not_true holds when the attribute is missing or a constant other than
# true: an unknown value (a variable) is given the benefit of the doubt.
not_true(b, name) if not b.attributes[name]

not_true(b, name) if {
	b.attributes[name].known
	b.attributes[name].value != true
}

# value is the constant value of an attribute.
value(b, name) := b.attributes[name].value if b.attributes[name].known

# line is the line of an attribute, else of the block.
line(b, name) := l if {
	l := b.attributes[name].line
} else := b.line

# nested is the list of nested blocks of a type.
nested(b, type) := [x | some x in b.blocks; x.type == type]

# refers_to holds when an attribute refers to the resource block r.
refers_to(attr, r) if {
	some ref in attr.refs
	startswith(ref, concat("", [r.address, "."]))
}

refers_to(attr, r) if r.address in attr.refs

# companion holds when the file has a resource of the given type whose
# bucket (or other attribute) refers to r.
companion(type, attr, r) := c if {
	some c in resources(type)
	refers_to(c.attributes[attr], r)
}

# world_cidrs are the addresses that mean "anyone".
world_cidrs := {"0.0.0.0/0", "::/0", "0.0.0.0", "*", "Internet", "Any", "any", "internet"}

# covers holds when a port range (numbers, or -1 / "all" for every port)
# includes port.
covers(from, to, port) if {
	is_number(from)
	is_number(to)
	from <= port
	port <= to
}

covers(from, _, _) if from == -1

# covers_spec holds when a port spec of the form "*", "22" or "20-30"
# includes port.
covers_spec("*", _)

covers_spec(spec, port) if to_number(spec) == port

covers_spec(spec, port) if {
	parts := split(spec, "-")
	count(parts) == 2
	to_number(trim_space(parts[0])) <= port
	port <= to_number(trim_space(parts[1]))
}

# aws_ingress holds every AWS security group ingress rule of the file, in
# any of its three forms, with the CIDRs it admits and its ports.
aws_ingress contains {"block": b, "rule": r, "line": r.line, "from": from, "to": to, "cidrs": cidrs, "protocol": proto} if {
	some b in resources("aws_security_group")
	some r in nested(b, "ingress")
	from := object.get(r.attributes, ["from_port", "value"], null)
	to := object.get(r.attributes, ["to_port", "value"], null)
	proto := lower(sprintf("%v", [object.get(r.attributes, ["protocol", "value"], "")]))
	cidrs := array.concat(object.get(r.attributes, ["cidr_blocks", "value"], []), object.get(r.attributes, ["ipv6_cidr_blocks", "value"], []))
}

aws_ingress contains {"block": b, "rule": b, "line": b.line, "from": from, "to": to, "cidrs": cidrs, "protocol": proto} if {
	some b in resources("aws_security_group_rule")
	value(b, "type") == "ingress"
	from := object.get(b.attributes, ["from_port", "value"], null)
	to := object.get(b.attributes, ["to_port", "value"], null)
	proto := lower(sprintf("%v", [object.get(b.attributes, ["protocol", "value"], "")]))
	cidrs := array.concat(object.get(b.attributes, ["cidr_blocks", "value"], []), object.get(b.attributes, ["ipv6_cidr_blocks", "value"], []))
}

aws_ingress contains {"block": b, "rule": b, "line": b.line, "from": from, "to": to, "cidrs": cidrs, "protocol": proto} if {
	some b in resources("aws_vpc_security_group_ingress_rule")
	from := object.get(b.attributes, ["from_port", "value"], null)
	to := object.get(b.attributes, ["to_port", "value"], null)
	proto := lower(sprintf("%v", [object.get(b.attributes, ["ip_protocol", "value"], "")]))
	cidrs := [c | some k in ["cidr_ipv4", "cidr_ipv6"]; c := b.attributes[k].value]
}

# aws_rule_covers holds when an ingress rule admits port.
aws_rule_covers(rule, _) if rule.protocol in {"-1", "all"}

aws_rule_covers(rule, port) if {
	not rule.protocol in {"-1", "all"}
	covers(rule.from, rule.to, port)
}

# aws_rule_open holds when an ingress rule admits the whole internet.
aws_rule_open(rule) if {
	some c in rule.cidrs
	c in {"0.0.0.0/0", "::/0"}
}
