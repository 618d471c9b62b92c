package rampart.gates.pre_merge.secrets

metadata := {
	"id": "RMP-PR-004",
	"title": "Pull requests add no secrets",
	"remediation": "Remove the secret from the branch's history (not just the last commit), revoke it, and load it from the vault at run time.",
}

deny contains {"message": msg, "ids": [f.rule_id], "path": path, "fingerprint": object.get(f, "fingerprint", "")} if {
	some f in input.findings
	f.kind == "secret"
	not f.suppressed
	path := object.get(f, ["location", "path"], "")
	msg := sprintf("new secret (%s) in %s", [f.rule_id, path])
}
