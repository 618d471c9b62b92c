package rampart.checks.dockerfile.curl_pipe_shell

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-007",
	"severity": "high",
	"title": "Script downloaded and piped straight into a shell",
	"remediation": "Download the script to a file, verify its checksum or signature, then run it; or install the software from a package repository.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s curl|sh", [df.where(i)])} if {
	some i in df.runs
	regex.match(`(?i)\b(curl|wget)\b[^|;&\n]*\|\s*(sudo\s+(-\S+\s+)*)?(/usr)?(/bin/)?(ba|z|da|k|fi)?sh\b`, df.script(i))
	msg := "RUN pipes a download into a shell without verifying it"
}
