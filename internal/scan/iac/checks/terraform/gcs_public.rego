package rampart.checks.terraform.gcs_public

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-019",
	"severity": "high",
	"title": "Cloud Storage bucket is open to allUsers or allAuthenticatedUsers",
	"remediation": "Grant roles to specific members; serve public content through a load balancer or signed URLs.",
}

public := {"allUsers", "allAuthenticatedUsers"}

deny contains {"message": msg, "line": tf.line(b, "member"), "resource": sprintf("%s/%s", [b.address, m])} if {
	some b in tf.resources("google_storage_bucket_iam_member")
	m := tf.value(b, "member")
	m in public
	msg := sprintf("%s grants %v to %s", [b.address, object.get(b.attributes, ["role", "value"], "a role"), m])
}

deny contains {"message": msg, "line": tf.line(b, "members"), "resource": sprintf("%s/%s", [b.address, m])} if {
	some b in tf.resources("google_storage_bucket_iam_binding")
	some m in tf.value(b, "members")
	m in public
	msg := sprintf("%s grants %v to %s", [b.address, object.get(b.attributes, ["role", "value"], "a role"), m])
}

deny contains {"message": msg, "line": tf.line(b, "role_entity"), "resource": sprintf("%s/%s", [b.address, e])} if {
	some b in tf.resources("google_storage_bucket_acl")
	some e in tf.value(b, "role_entity")
	some m in public
	endswith(e, concat("", [":", m]))
	msg := sprintf("%s grants %s", [b.address, e])
}
