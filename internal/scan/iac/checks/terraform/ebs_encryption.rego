package rampart.checks.terraform.ebs_encryption

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-011",
	"severity": "high",
	"title": "EBS volume is not encrypted",
	"remediation": "Set encrypted = true (and kms_key_id for a customer-managed key), or turn on EBS encryption by default for the account.",
}

deny contains {"message": msg, "line": tf.line(b, "encrypted"), "resource": b.address} if {
	some b in tf.resources("aws_ebs_volume")
	tf.not_true(b, "encrypted")
	msg := sprintf("%s is not encrypted", [b.address])
}

deny contains {"message": msg, "line": tf.line(d, "encrypted"), "resource": sprintf("%s/%s/%d", [b.address, kind, i])} if {
	some b in tf.resources("aws_instance")
	some kind in ["root_block_device", "ebs_block_device"]
	some i, d in tf.nested(b, kind)
	tf.not_true(d, "encrypted")
	msg := sprintf("%s has an unencrypted %s", [b.address, kind])
}
