package rampart.tests.pre_deploy

import data.rampart.gates.pre_deploy

settings := object.union(data.rampart.config.settings, {
	"rampart_registry": "rampart.example:8443",
	"allowed_registries": ["ghcr.io"],
	"approved_base_images": ["rampart.example:8443/base/*"],
})

good_image := {
	"reference": "rampart.example:8443/acme/web:1.4@sha256:aaaa",
	"digest": "sha256:aaaa",
	"base_image": "rampart.example:8443/base/distroless:12",
	"scan": {"status": "scanned", "summary": {"critical": 0, "high": 0}, "vulnerabilities": [
		{"id": "GO-2024-0001", "aliases": ["CVE-2024-0001"], "severity": "low", "package": "golang.org/x/net", "version": "0.1.0", "fixed_version": "0.2.0"},
		{"id": "GO-2024-0002", "severity": "critical", "package": "golang.org/x/text", "version": "0.1.0", "fixed_version": ""},
	], "secrets": []},
	"sbom": {"present": true, "format": "cyclonedx"},
	"signatures": [{"key": "rampart", "verified": true}],
	"provenance": {"present": true, "verified": true, "builder": "rampart", "source": {"host": "rampart", "repository": "acme/web", "ref": "refs/heads/main", "protected": true}},
}

release(img) := {"release": {"name": "web", "version": "1.4.0"}, "environment": {"name": "production", "protected": true}, "images": [img]}

# messages collects every denial of the pre-deploy policies for an image.
messages(img) := {msg |
	gate := pre_deploy with input as release(img) with data.rampart.config.settings as settings
	some name, pol in gate
	some d in pol.deny
	msg := sprintf("%s: %s", [name, d.message])
}

test_good_release_allowed if {
	count(messages(good_image)) == 0
}

test_unsigned_image_denied if {
	img := object.union(good_image, {"signatures": [{"key": "rampart", "verified": false}, {"key": "someone", "verified": true}]})
	messages(img) == {"signed: image rampart.example:8443/acme/web:1.4@sha256:aaaa carries no verified signature by a trusted key (rampart)"}
}

test_provenance_problems if {
	cases := [
		[{"present": false}, "has no SLSA provenance attestation"],
		[object.union(good_image.provenance, {"verified": false}), "has a provenance attestation whose signature was not verified"],
		[object.union(good_image.provenance, {"builder": "github-actions"}), "was built by \"github-actions\", not by a trusted builder (rampart)"],
		[object.union(good_image.provenance, {"source": {"host": "github.com", "protected": true}}), "was not built from a repository of this Rampart"],
		[object.union(good_image.provenance, {"source": {"host": "rampart", "repository": "acme/web", "ref": "refs/heads/feature", "protected": false}}), "was built from refs/heads/feature of acme/web, which is not a protected branch"],
	]
	every c in cases {
		msgs := messages(object.union(good_image, {"provenance": c[0]}))
		msgs == {sprintf("provenance: image %s %s", [good_image.reference, c[1]])}
	}
}

test_fixable_vulnerability_at_threshold_denied if {
	vulns := array.concat(good_image.scan.vulnerabilities, [{"id": "GHSA-xxxx", "aliases": ["CVE-2024-9"], "severity": "high", "package": "openssl", "version": "3.0.1", "fixed_version": "3.0.9"}])
	img := json.patch(good_image, [{"op": "replace", "path": "/scan/vulnerabilities", "value": vulns}])
	messages(img) == {"vulnerabilities: image rampart.example:8443/acme/web:1.4@sha256:aaaa: GHSA-xxxx (high) in openssl 3.0.1, fixed in 3.0.9 (threshold: high)"}
	some d in pre_deploy.vulnerabilities.deny with input as release(img) with data.rampart.config.settings as settings
	d.ids == ["GHSA-xxxx", "CVE-2024-9"]
}

test_threshold_is_configurable if {
	# The low vulnerability with a fix denies once the threshold is low.
	low := object.union(settings, {"vulnerability_threshold": "low"})
	ds := pre_deploy.vulnerabilities.deny with input as release(good_image) with data.rampart.config.settings as low
	count(ds) == 1
}

test_missing_sbom_denied if {
	messages(object.union(good_image, {"sbom": {"present": false}})) == {"sbom: image rampart.example:8443/acme/web:1.4@sha256:aaaa has no SBOM attached"}
	messages(object.remove(good_image, ["sbom"])) == {"sbom: image rampart.example:8443/acme/web:1.4@sha256:aaaa has no SBOM attached"}
}

test_secret_denied if {
	img := json.patch(good_image, [{"op": "replace", "path": "/scan/secrets", "value": [{"rule_id": "aws-access-key-id", "path": "/app/.env", "fingerprint": "f1"}]}])
	messages(img) == {"secrets: image rampart.example:8443/acme/web:1.4@sha256:aaaa holds a secret (aws-access-key-id) in /app/.env"}
}

test_registries if {
	# ghcr.io is allowed by the settings, docker.io is not.
	count(messages(object.union(good_image, {"reference": "ghcr.io/acme/web@sha256:aaaa"}))) == 0
	messages(object.union(good_image, {"reference": "nginx@sha256:aaaa"})) == {"registries: image nginx@sha256:aaaa comes from docker.io, which is not an allowed registry (allowed: ghcr.io, rampart.example:8443)"}
}

test_latest_and_missing_digest_denied if {
	messages(object.union(good_image, {"reference": "rampart.example:8443/acme/web:latest"})) == {"pinned: image rampart.example:8443/acme/web:latest uses the tag latest"}
	messages(object.union(good_image, {"digest": ""})) == {"pinned: the release names no digest for image rampart.example:8443/acme/web:1.4@sha256:aaaa"}
}

test_base_images if {
	messages(object.union(good_image, {"base_image": "docker.io/library/ubuntu:24.04"})) == {"base_images: image rampart.example:8443/acme/web:1.4@sha256:aaaa is built on docker.io/library/ubuntu:24.04, which is not an approved base image (rampart.example:8443/base/*)"}
	messages(object.remove(good_image, ["base_image"])) == {"base_images: image rampart.example:8443/acme/web:1.4@sha256:aaaa is built on an unknown base image, which is not an approved base image (rampart.example:8443/base/*)"}

	# Without a list any base image will do.
	any := object.union(settings, {"approved_base_images": []})
	count(pre_deploy.base_images.deny) == 0 with input as release(object.remove(good_image, ["base_image"])) with data.rampart.config.settings as any
}

test_unscanned_denied if {
	img := json.patch(good_image, [{"op": "replace", "path": "/scan/status", "value": "pending"}])
	messages(img) == {"scanned: image rampart.example:8443/acme/web:1.4@sha256:aaaa has not been scanned (scan status: pending)"}
}

test_every_image_of_a_release_is_checked if {
	bad := object.union(good_image, {"reference": "rampart.example:8443/acme/worker:2@sha256:bbbb", "signatures": []})
	input_doc := object.union(release(good_image), {"images": [good_image, bad]})
	ds := pre_deploy.signed.deny with input as input_doc with data.rampart.config.settings as settings
	{d.image | some d in ds} == {"rampart.example:8443/acme/worker:2@sha256:bbbb"}
}
