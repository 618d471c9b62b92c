package rampart.checks.terraform.lb_http

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-016",
	"severity": "medium",
	"title": "Load balancer listener serves plain HTTP",
	"remediation": "Listen with protocol = \"HTTPS\" and a certificate, and make the HTTP listener redirect to HTTPS.",
}

redirects_to_https(b) if {
	some action in tf.nested(b, "default_action")
	tf.value(action, "type") == "redirect"
	some r in tf.nested(action, "redirect")
	tf.value(r, "protocol") == "HTTPS"
}

deny contains {"message": msg, "line": tf.line(b, "protocol"), "resource": b.address} if {
	some type in ["aws_lb_listener", "aws_alb_listener"]
	some b in tf.resources(type)
	tf.value(b, "protocol") == "HTTP"
	not redirects_to_https(b)
	msg := sprintf("%s serves HTTP without redirecting to HTTPS", [b.address])
}
