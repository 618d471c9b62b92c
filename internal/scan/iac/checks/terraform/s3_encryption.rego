package rampart.checks.terraform.s3_encryption

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-005",
	"severity": "medium",
	"title": "S3 bucket has no server-side encryption configuration",
	"remediation": "Add an aws_s3_bucket_server_side_encryption_configuration for the bucket, preferably with aws:kms and a customer-managed key.",
}

deny contains {"message": msg, "line": b.line, "resource": b.address} if {
	some b in tf.resources("aws_s3_bucket")
	count(tf.nested(b, "server_side_encryption_configuration")) == 0
	not tf.companion("aws_s3_bucket_server_side_encryption_configuration", "bucket", b)
	msg := sprintf("%s has no server-side encryption configuration in this file", [b.address])
}
