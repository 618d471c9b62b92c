package rampart.checks.terraform.hardcoded_password

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-020",
	"severity": "high",
	"title": "Password hard-coded in a resource",
	"remediation": "Take the password from a secret store (a sensitive variable fed by the pipeline, aws_secretsmanager_secret_version, manage_master_user_password = true) and rotate the one in the file.",
}

password_attributes := {"password", "master_password", "administrator_login_password", "admin_password", "root_password"}

deny contains {"message": msg, "line": a.line, "resource": sprintf("%s/%s", [b.address, name])} if {
	some b in input.blocks
	b.type == "resource"
	some name, a in b.attributes
	name in password_attributes
	a.known
	is_string(a.value)
	a.value != ""
	msg := sprintf("%s sets %s to a literal value", [b.address, name])
}
