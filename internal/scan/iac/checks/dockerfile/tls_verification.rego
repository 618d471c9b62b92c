package rampart.checks.dockerfile.tls_verification

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-014",
	"severity": "high",
	"title": "TLS or package signature verification turned off",
	"remediation": "Remove the flag or setting that disables verification and install the CA certificate the download needs instead.",
}

# patterns that switch verification off, with what they do.
patterns := {
	`\bcurl\b[^\n;&|]*\s(-[a-zA-Z]*k[a-zA-Z]*|--insecure)\b`: "curl --insecure",
	`\bwget\b[^\n;&|]*--no-check-certificate`: "wget --no-check-certificate",
	`--allow-unauthenticated|AllowUnauthenticated\s*[= ]\s*(true|1)`: "apt-get --allow-unauthenticated",
	`\bpip3?\b[^\n;&|]*--trusted-host`: "pip --trusted-host",
	`\b(npm|yarn|pnpm)\b[^\n;&|]*strict-ssl\s*[= ]?\s*false`: "npm strict-ssl false",
	`git\b[^\n;&|]*http\.sslVerify\s*[= ]?\s*false`: "git http.sslVerify false",
	`NODE_TLS_REJECT_UNAUTHORIZED\s*=\s*['"]?0`: "NODE_TLS_REJECT_UNAUTHORIZED=0",
	`GIT_SSL_NO_VERIFY\s*=\s*['"]?(1|true)`: "GIT_SSL_NO_VERIFY",
	`PYTHONHTTPSVERIFY\s*=\s*['"]?0`: "PYTHONHTTPSVERIFY=0",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s", [df.where(i), what])} if {
	some i in df.runs
	some pattern, what in patterns
	regex.match(pattern, df.script(i))
	msg := sprintf("RUN turns verification off (%s)", [what])
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s %s", [df.where(i), v.key, what])} if {
	some i in input.instructions
	i.cmd == "env"
	some v in i.vars
	some pattern, what in patterns
	regex.match(pattern, sprintf("%s=%s", [v.key, v.value]))
	msg := sprintf("ENV turns verification off for every later step and the running container (%s)", [what])
}
