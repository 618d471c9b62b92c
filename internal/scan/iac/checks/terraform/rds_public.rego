package rampart.checks.terraform.rds_public

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-013",
	"severity": "critical",
	"title": "RDS instance is publicly accessible",
	"remediation": "Set publicly_accessible = false and reach the database from inside the VPC.",
}

deny contains {"message": msg, "line": tf.line(b, "publicly_accessible"), "resource": b.address} if {
	some type in ["aws_db_instance", "aws_rds_cluster_instance"]
	some b in tf.resources(type)
	tf.is_true(b, "publicly_accessible")
	msg := sprintf("%s is reachable from the internet (publicly_accessible = true)", [b.address])
}
