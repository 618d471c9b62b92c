package rampart.checks.terraform.gcp_firewall_open

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-004",
	"severity": "critical",
	"title": "GCP firewall rule opens SSH or RDP to the internet",
	"remediation": "Restrict source_ranges to known ranges, or reach instances through Identity-Aware Proxy (35.235.240.0/20).",
}

ports := {22: "SSH", 3389: "RDP"}

admits(allow, _) if not allow.attributes.ports

admits(allow, port) if {
	some spec in tf.value(allow, "ports")
	is_string(spec)
	tf.covers_spec(spec, port)
}

deny contains {"message": msg, "line": allow.line, "resource": sprintf("%s/%d", [b.address, port])} if {
	some b in tf.resources("google_compute_firewall")
	upper(object.get(b.attributes, ["direction", "value"], "INGRESS")) == "INGRESS"
	some cidr in tf.value(b, "source_ranges")
	cidr in {"0.0.0.0/0", "::/0"}
	some allow in tf.nested(b, "allow")
	lower(tf.value(allow, "protocol")) in {"tcp", "all"}
	some port, name in ports
	admits(allow, port)
	msg := sprintf("%s allows %s (port %d) from %s", [b.address, name, port, cidr])
}
