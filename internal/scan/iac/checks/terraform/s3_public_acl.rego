package rampart.checks.terraform.s3_public_acl

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-006",
	"severity": "high",
	"title": "S3 bucket ACL grants public access",
	"remediation": "Use the private ACL (or none, with object ownership BucketOwnerEnforced) and serve public content through CloudFront.",
}

public := {"public-read", "public-read-write", "authenticated-read"}

deny contains {"message": msg, "line": tf.line(b, "acl"), "resource": b.address} if {
	some type in ["aws_s3_bucket", "aws_s3_bucket_acl"]
	some b in tf.resources(type)
	acl := tf.value(b, "acl")
	acl in public
	msg := sprintf("%s uses the %s ACL", [b.address, acl])
}
