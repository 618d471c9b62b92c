package rampart.checks.terraform.kms_rotation

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-021",
	"severity": "medium",
	"title": "KMS key rotation is not enabled",
	"remediation": "Set enable_key_rotation = true on symmetric encryption keys.",
}

deny contains {"message": msg, "line": tf.line(b, "enable_key_rotation"), "resource": b.address} if {
	some b in tf.resources("aws_kms_key")
	object.get(b.attributes, ["customer_master_key_spec", "value"], "SYMMETRIC_DEFAULT") == "SYMMETRIC_DEFAULT"
	object.get(b.attributes, ["key_usage", "value"], "ENCRYPT_DECRYPT") == "ENCRYPT_DECRYPT"
	tf.not_true(b, "enable_key_rotation")
	msg := sprintf("%s does not rotate its key material", [b.address])
}
