package rampart.checks.terraform.s3_no_public_access_block

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-008",
	"severity": "low",
	"title": "S3 bucket has no public access block",
	"remediation": "Add an aws_s3_bucket_public_access_block for the bucket with all four settings true.",
}

deny contains {"message": msg, "line": b.line, "resource": b.address} if {
	some b in tf.resources("aws_s3_bucket")
	not tf.companion("aws_s3_bucket_public_access_block", "bucket", b)
	msg := sprintf("%s has no aws_s3_bucket_public_access_block in this file", [b.address])
}
