package rampart.checks.dockerfile.base_image_tag

import data.rampart.lib.image

metadata := {
	"id": "RMP-DF-006",
	"severity": "medium",
	"title": "Base image is untagged or :latest",
	"remediation": "Pin the base image to a version tag, or better a digest (image:tag@sha256:…), and update it deliberately.",
}

deny contains {"message": msg, "line": s.line, "resource": sprintf("stage %d FROM", [s.index])} if {
	some s in input.stages
	s.base_known
	not s.base_stage
	not s.base_scratch
	image.unpinned(s.base)
	msg := sprintf("FROM %s names no fixed version", [s.base])
}
