package rampart.checks.dockerfile.add_local

import data.rampart.lib.dockerfile as df

metadata := {
	"id": "RMP-DF-013",
	"severity": "low",
	"title": "ADD used to copy local files",
	"remediation": "Use COPY for local files and directories; keep ADD for archives that must be unpacked.",
}

special(src) if regex.match(`^(?i)((https?|ftp|git)://|git@)`, src)

special(src) if regex.match(`(?i)\.(tar|tgz|tar\.(gz|bz2|xz|zst)|tbz2?|txz)$`, src)

deny contains {"message": msg, "line": i.line, "resource": sprintf("%s %s", [df.where(i), concat(" ", srcs)])} if {
	some i in input.instructions
	i.cmd == "add"
	count(i.heredocs) == 0
	count(i.args) >= 2
	srcs := array.slice(i.args, 0, count(i.args) - 1)
	every src in srcs {
		not special(src)
	}
	msg := sprintf("ADD %s copies local files: COPY says so and does no more", [concat(" ", srcs)])
}
