package rampart.checks.terraform.s3_versioning

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-009",
	"severity": "medium",
	"title": "S3 bucket versioning is not enabled",
	"remediation": "Add an aws_s3_bucket_versioning with versioning_configuration { status = \"Enabled\" } so that overwritten or deleted objects can be recovered.",
}

inline_enabled(b) if {
	some v in tf.nested(b, "versioning")
	not tf.is_false(v, "enabled")
}

companion_enabled(b) if {
	c := tf.companion("aws_s3_bucket_versioning", "bucket", b)
	some vc in tf.nested(c, "versioning_configuration")
	tf.value(vc, "status") != "Disabled"
	tf.value(vc, "status") != "Suspended"
}

companion_enabled(b) if {
	c := tf.companion("aws_s3_bucket_versioning", "bucket", b)
	some vc in tf.nested(c, "versioning_configuration")
	not vc.attributes.status.known
}

deny contains {"message": msg, "line": b.line, "resource": b.address} if {
	some b in tf.resources("aws_s3_bucket")
	not inline_enabled(b)
	not companion_enabled(b)
	msg := sprintf("%s does not enable versioning in this file", [b.address])
}
