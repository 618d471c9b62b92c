package rampart.checks.terraform.provider_credentials

import data.rampart.lib.secrets
import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-015",
	"severity": "critical",
	"title": "Credentials hard-coded in a provider block",
	"remediation": "Remove the credential from the file and revoke it; let the provider read it from its environment variables, a credentials file or a workload identity.",
}

credential_attributes := {"access_key", "secret_key", "token", "client_secret", "client_certificate_password", "password", "api_key", "api_token"}

credential(name) if name in credential_attributes

credential(name) if secrets.secret_name(name)

deny contains {"message": msg, "line": a.line, "resource": sprintf("%s/%s", [b.address, name])} if {
	some b in input.blocks
	b.type == "provider"
	some name, a in b.attributes
	credential(name)
	a.known
	is_string(a.value)
	a.value != ""
	msg := sprintf("provider %q sets %s to a literal value", [b.labels[0], name])
}

deny contains {"message": msg, "line": a.line, "resource": sprintf("%s/credentials", [b.address])} if {
	some b in input.blocks
	b.type == "provider"
	a := b.attributes.credentials
	contains(a.value, "private_key")
	msg := sprintf("provider %q embeds a service account key in credentials", [b.labels[0]])
}
