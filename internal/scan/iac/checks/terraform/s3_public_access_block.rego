package rampart.checks.terraform.s3_public_access_block

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-007",
	"severity": "high",
	"title": "S3 public access block leaves a protection off",
	"remediation": "Set block_public_acls, block_public_policy, ignore_public_acls and restrict_public_buckets to true.",
}

settings := ["block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"]

deny contains {"message": msg, "line": tf.line(b, s), "resource": sprintf("%s/%s", [b.address, s])} if {
	some type in ["aws_s3_bucket_public_access_block", "aws_s3_account_public_access_block"]
	some b in tf.resources(type)
	some s in settings
	tf.not_true(b, s)
	msg := sprintf("%s does not set %s = true", [b.address, s])
}
