package rampart.checks.terraform.sg_admin_ports

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-001",
	"severity": "critical",
	"title": "Security group opens a remote administration port to the internet",
	"remediation": "Limit the rule's CIDR blocks to known addresses (a VPN or bastion), or use AWS Systems Manager Session Manager instead of opening SSH or RDP.",
}

ports := {22: "SSH", 23: "Telnet", 3389: "RDP", 2375: "Docker API", 2376: "Docker API", 5985: "WinRM", 5986: "WinRM"}

deny contains {"message": msg, "line": rule.line, "resource": sprintf("%s/%v/%v-%v", [rule.block.address, rule.protocol, rule.from, rule.to])} if {
	some rule in tf.aws_ingress
	tf.aws_rule_open(rule)
	hits := sort([p | some p, _ in ports; tf.aws_rule_covers(rule, p)])
	count(hits) > 0
	names := [sprintf("%d (%s)", [p, ports[p]]) | some p in hits]
	msg := sprintf("%s lets the whole internet reach port %s", [rule.block.address, concat(", ", names)])
}
