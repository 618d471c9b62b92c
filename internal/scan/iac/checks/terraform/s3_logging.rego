package rampart.checks.terraform.s3_logging

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-010",
	"severity": "low",
	"title": "S3 bucket access logging is not enabled",
	"remediation": "Add an aws_s3_bucket_logging that sends the bucket's access logs to a separate log bucket.",
}

deny contains {"message": msg, "line": b.line, "resource": b.address} if {
	some b in tf.resources("aws_s3_bucket")
	count(tf.nested(b, "logging")) == 0
	not tf.companion("aws_s3_bucket_logging", "bucket", b)
	msg := sprintf("%s has no access logging in this file", [b.address])
}
