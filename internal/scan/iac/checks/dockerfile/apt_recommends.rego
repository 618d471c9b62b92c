package rampart.checks.dockerfile.apt_recommends

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-008",
	"severity": "low",
	"title": "apt-get install without --no-install-recommends",
	"remediation": "Add --no-install-recommends to apt-get install so that only the packages named (and their dependencies) enter the image.",
}

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s apt-get install", [df.where(i)])} if {
	some i in df.runs
	s := df.script(i)
	regex.match(`\bapt-get\s+(-\S+\s+)*install\b`, s)
	not regex.match(`--no-install-recommends|APT::Install-Recommends=(false|0)`, s)
	msg := "apt-get install also installs recommended packages"
}
