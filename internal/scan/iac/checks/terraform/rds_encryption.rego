package rampart.checks.terraform.rds_encryption

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-012",
	"severity": "high",
	"title": "RDS storage is not encrypted",
	"remediation": "Set storage_encrypted = true (a new instance is needed: restore an encrypted copy of a snapshot).",
}

deny contains {"message": msg, "line": tf.line(b, "storage_encrypted"), "resource": b.address} if {
	some type in ["aws_db_instance", "aws_rds_cluster"]
	some b in tf.resources(type)
	tf.not_true(b, "storage_encrypted")
	not tf.value(b, "replicate_source_db")
	msg := sprintf("%s does not encrypt its storage", [b.address])
}
