# Helpers for the evidence an image carries (image and pre-deploy gates):
# scan results, signatures, SBOM and provenance.
package rampart.lib.evidence

import data.rampart.config.settings
import data.rampart.lib.severity

# signed holds when a trusted key signed the image and the caller
# verified the signature.
signed(img) if {
	some s in object.get(img, "signatures", [])
	s.verified == true
	s.key in settings.trusted_keys
}

scanned(img) if object.get(img, ["scan", "status"], "") == "scanned"

# fixable lists the vulnerabilities at or above the threshold that have a
# fixed version.
fixable(img) := [v |
	some v in object.get(img, ["scan", "vulnerabilities"], [])
	object.get(v, "fixed_version", "") != ""
	severity.at_least(v.severity, settings.vulnerability_threshold)
]

# vuln_ids are the ids an exception may name for a vulnerability.
vuln_ids(v) := array.concat([v.id], object.get(v, "aliases", []))

# vuln_text describes a vulnerability for messages.
vuln_text(v) := sprintf("%s (%s) in %s %s, fixed in %s", [v.id, v.severity, object.get(v, "package", "?"), object.get(v, "version", "?"), v.fixed_version])

secrets(img) := object.get(img, ["scan", "secrets"], [])

has_sbom(img) if object.get(img, ["sbom", "present"], false) == true

# provenance_problem says what is wrong with an image's provenance, and is
# undefined when it is an attestation, verified, by a trusted builder,
# from a protected branch of a repository of this Rampart.
provenance_problem(img) := "has no SLSA provenance attestation" if {
	not object.get(img, ["provenance", "present"], false) == true
} else := "has a provenance attestation whose signature was not verified" if {
	not img.provenance.verified == true
} else := sprintf("was built by %q, not by a trusted builder (%s)", [b, concat(", ", settings.trusted_builders)]) if {
	b := object.get(img.provenance, "builder", "")
	not b in settings.trusted_builders
} else := "was not built from a repository of this Rampart" if {
	object.get(img.provenance, ["source", "host"], "") != "rampart"
} else := sprintf("was built from %s of %s, which is not a protected branch", [ref, repo]) if {
	not object.get(img.provenance, ["source", "protected"], false) == true
	ref := object.get(img.provenance, ["source", "ref"], "an unknown ref")
	repo := object.get(img.provenance, ["source", "repository"], "an unknown repository")
}

# user_is_root holds when the image runs as root: no USER, or user 0 or
# root (with or without a group).
user_is_root(img) if {
	user := split(object.get(img, ["config", "user"], ""), ":")[0]
	user in {"", "0", "root"}
}
