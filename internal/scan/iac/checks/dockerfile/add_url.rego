package rampart.checks.dockerfile.add_url

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-003",
	"severity": "medium",
	"title": "ADD downloads from a URL without a checksum",
	"remediation": "Download in a RUN step that verifies a checksum or signature, or use ADD --checksum=sha256:….",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s", [df.where(i), src])} if {
	some i in input.instructions
	i.cmd == "add"
	not checksum(i)
	some n, src in i.args
	n < count(i.args) - 1
	regex.match(`^(?i)(https?|ftp)://`, src)
	msg := sprintf("ADD fetches %s without verifying it", [src])
}

checksum(i) if {
	some f in i.flags
	startswith(f, "--checksum")
}
