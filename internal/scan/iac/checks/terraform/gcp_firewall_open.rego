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

deny contains {"message": msg, "line": allow.line, "resource": sprintf("%s/allow/%d", [b.address, i])} if {
	some b in tf.resources("google_compute_firewall")
	upper(object.get(b.attributes, ["direction", "value"], "INGRESS")) == "INGRESS"
	open := [c | some c in tf.value(b, "source_ranges"); c in {"0.0.0.0/0", "::/0"}]
	count(open) > 0
	some i, allow in tf.nested(b, "allow")
	lower(tf.value(allow, "protocol")) in {"tcp", "all"}
	hits := sort([p | some p, _ in ports; admits(allow, p)])
	count(hits) > 0
	names := [sprintf("%s (port %d)", [ports[p], p]) | some p in hits]
	msg := sprintf("%s allows %s from %s", [b.address, concat(" and ", names), concat(", ", open)])
}
