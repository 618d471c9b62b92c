package rampart.checks.terraform.azure_storage_tls

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-018",
	"severity": "medium",
	"title": "Azure storage account accepts TLS older than 1.2",
	"remediation": "Set min_tls_version = \"TLS1_2\".",
}

deny contains {"message": msg, "line": tf.line(b, "min_tls_version"), "resource": b.address} if {
	some b in tf.resources("azurerm_storage_account")
	v := tf.value(b, "min_tls_version")
	v in {"TLS1_0", "TLS1_1"}
	msg := sprintf("%s accepts %s", [b.address, v])
}
