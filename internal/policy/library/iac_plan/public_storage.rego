package rampart.gates.iac_plan.public_storage

import data.rampart.lib.plan

metadata := {
	"id": "RMP-IAC-004",
	"title": "Storage is not public",
	"remediation": "Make the bucket or container private and share objects through signed URLs or a CDN with its own access control.",
}

public_acls := {"public-read", "public-read-write", "authenticated-read"}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type in {"aws_s3_bucket_acl", "aws_s3_bucket"}
	object.get(rc.change.after, "acl", "") in public_acls
	msg := sprintf("%s grants the %s ACL", [rc.address, rc.change.after.acl])
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type in {"google_storage_bucket_iam_member", "google_storage_bucket_iam_binding"}
	members := array.concat([object.get(rc.change.after, "member", "")], object.get(rc.change.after, "members", []))
	some m in members
	m in {"allUsers", "allAuthenticatedUsers"}
	msg := sprintf("%s grants %s access to %s", [rc.address, rc.change.after.role, m])
}

deny contains {"message": msg, "resource": rc.address} if {
	some rc in plan.changed
	rc.type == "azurerm_storage_container"
	object.get(rc.change.after, "container_access_type", "private") != "private"
	msg := sprintf("%s allows anonymous %s access", [rc.address, rc.change.after.container_access_type])
}
