package rampart.checks.terraform.iam_admin

import data.rampart.lib.terraform as tf

metadata := {
	"id": "RMP-TF-014",
	"severity": "critical",
	"title": "IAM policy allows every action on every resource",
	"remediation": "Grant the specific actions and resources the principal needs; keep full administrator access to break-glass roles.",
}

policy_types := ["aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"]

as_list(x) := x if is_array(x)

as_list(x) := [x] if not is_array(x)

# statements are the statements of a policy given as a JSON string (a
# heredoc, jsonencode(...) or a literal).
statements(policy) := as_list(json.unmarshal(policy).Statement) if is_string(policy)

deny contains {"message": msg, "line": tf.line(b, "policy"), "resource": b.address} if {
	some type in policy_types
	some b in tf.resources(type)
	some st in statements(tf.value(b, "policy"))
	object.get(st, "Effect", "") == "Allow"
	"*" in as_list(object.get(st, "Action", []))
	"*" in as_list(object.get(st, "Resource", []))
	msg := sprintf("%s allows Action \"*\" on Resource \"*\"", [b.address])
}

deny contains {"message": msg, "line": st.line, "resource": b.address} if {
	some b in tf.data_sources("aws_iam_policy_document")
	some st in tf.nested(b, "statement")
	object.get(st.attributes, ["effect", "value"], "Allow") == "Allow"
	"*" in tf.value(st, "actions")
	"*" in tf.value(st, "resources")
	msg := sprintf("%s allows actions [\"*\"] on resources [\"*\"]", [b.address])
}
