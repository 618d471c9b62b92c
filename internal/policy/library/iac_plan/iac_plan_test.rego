package rampart.tests.iac_plan

import data.rampart.gates.iac_plan

change(type, name, actions, after) := {"address": sprintf("%s.%s", [type, name]), "type": type, "name": name, "change": {"actions": actions, "before": null, "after": after}}

plan(changes, protected) := {"environment": {"name": "production", "protected": protected}, "plan": {"format_version": "1.2", "resource_changes": changes}}

outcome(doc) := {name: msgs |
	gate := iac_plan with input as doc
	some name, pol in gate
	msgs := {d.message | some d in pol.deny}
	count(msgs) > 0
}

test_clean_plan if {
	outcome(plan([change("aws_s3_bucket", "logs", ["create"], {"bucket": "logs", "tags": {"owner": "ops"}})], true)) == {}
}

test_deletes_in_protected_environments if {
	changes := [
		change("aws_db_instance", "main", ["delete"], null),
		change("aws_instance", "web", ["delete", "create"], {"tags": {"owner": "ops"}}),
	]
	outcome(plan(changes, true)) == {"destroy": {
		"the plan deletes aws_db_instance.main in protected environment production",
		"the plan replaces aws_instance.web in protected environment production",
	}}
	outcome(plan(changes, false)) == {}
}

test_required_tags if {
	outcome(plan([change("aws_instance", "web", ["create"], {"tags": null})], false)) == {"tags": {"aws_instance.web lacks the tag owner"}}
	outcome(plan([change("aws_instance", "web", ["update"], {"tags": {}, "tags_all": {"owner": "ops"}})], false)) == {}

	# Resources without tags are not taggable.
	outcome(plan([change("aws_iam_policy_attachment", "x", ["create"], {"roles": []})], false)) == {}
}

test_open_ingress if {
	sg := change("aws_security_group", "web", ["create"], {"tags": {"owner": "ops"}, "ingress": [
		{"from_port": 443, "to_port": 443, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]},
		{"from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["10.0.0.0/8"]},
		{"from_port": 0, "to_port": 65535, "protocol": "tcp", "ipv6_cidr_blocks": ["::/0"]},
	]})
	rule := change("aws_security_group_rule", "ssh", ["create"], {"type": "ingress", "from_port": 22, "to_port": 22, "protocol": "tcp", "cidr_blocks": ["0.0.0.0/0"]})
	vpc := change("aws_vpc_security_group_ingress_rule", "db", ["create"], {"from_port": 5432, "to_port": 5432, "cidr_ipv4": "0.0.0.0/0"})
	nsg := change("azurerm_network_security_rule", "rdp", ["create"], {"direction": "Inbound", "access": "Allow", "source_address_prefix": "*", "destination_port_range": "3389"})
	outcome(plan([sg, rule, vpc, nsg], false)) == {"open_ingress": {
		"aws_security_group.web admits 0-65535/tcp from the whole internet",
		"aws_security_group_rule.ssh admits 22-22/tcp from the whole internet",
		"aws_vpc_security_group_ingress_rule.db admits ports 5432-5432 from the whole internet",
		"azurerm_network_security_rule.rdp admits port 3389 from the whole internet",
	}}
}

test_public_storage if {
	changes := [
		change("aws_s3_bucket_acl", "site", ["create"], {"acl": "public-read"}),
		change("aws_s3_bucket_acl", "logs", ["create"], {"acl": "private"}),
		change("google_storage_bucket_iam_member", "pub", ["create"], {"role": "roles/storage.objectViewer", "member": "allUsers"}),
		change("azurerm_storage_container", "c", ["create"], {"container_access_type": "blob"}),
	]
	outcome(plan(changes, false)) == {"public_storage": {
		"aws_s3_bucket_acl.site grants the public-read ACL",
		"google_storage_bucket_iam_member.pub grants roles/storage.objectViewer access to allUsers",
		"azurerm_storage_container.c allows anonymous blob access",
	}}
}
