package rampart.checks.terraform.azure_storage_http

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-017",
	"severity": "high",
	"title": "Azure storage account accepts plain HTTP",
	"remediation": "Set https_traffic_only_enabled = true (enable_https_traffic_only in provider versions before 4.0).",
}

deny contains {"message": msg, "line": tf.line(b, attr), "resource": b.address} if {
	some b in tf.resources("azurerm_storage_account")
	some attr in ["https_traffic_only_enabled", "enable_https_traffic_only"]
	tf.is_false(b, attr)
	msg := sprintf("%s accepts requests over plain HTTP (%s = false)", [b.address, attr])
}
