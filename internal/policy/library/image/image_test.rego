package rampart.tests.image

import data.rampart.gates.image

settings := object.union(data.rampart.config.settings, {"approved_base_images": ["rampart.example/base/*"]})

img := {
	"reference": "rampart.example/acme/web:1.4",
	"digest": "sha256:aaaa",
	"base_image": "rampart.example/base/static:1",
	"config": {"user": "65532"},
	"scan": {"status": "scanned", "vulnerabilities": [], "secrets": []},
	"signatures": [{"key": "rampart", "verified": true}],
}

# outcome maps each policy that objects to its messages.
outcome(action, i) := {name: msgs |
	gate := image with input as {"action": action, "image": i} with data.rampart.config.settings as settings
	some name, pol in gate
	msgs := {d.message | some d in pol.deny}
	count(msgs) > 0
}

test_clean_image_passes_both_ways if {
	outcome("push", img) == {}
	outcome("pull", img) == {}
}

test_unscanned_image_is_quarantined_on_pull_only if {
	pending := json.patch(img, [{"op": "replace", "path": "/scan/status", "value": "pending"}])
	outcome("push", pending) == {}
	outcome("pull", pending) == {"quarantine": {"image rampart.example/acme/web:1.4 is quarantined: its scan is pending"}}
	outcome("pull", object.remove(img, ["scan"])) == {"quarantine": {"image rampart.example/acme/web:1.4 is quarantined: its scan is not started"}}
}

test_fixable_critical_blocks_pulls if {
	vuln := {"id": "CVE-2024-1", "severity": "critical", "package": "zlib", "version": "1.2", "fixed_version": "1.3"}
	bad := json.patch(img, [{"op": "replace", "path": "/scan/vulnerabilities", "value": [vuln, object.union(vuln, {"id": "CVE-2024-2", "fixed_version": ""})]}])
	outcome("push", bad) == {}
	outcome("pull", bad) == {"vulnerabilities": {"image rampart.example/acme/web:1.4: CVE-2024-1 (critical) in zlib 1.2, fixed in 1.3 (threshold: high)"}}
}

test_secrets_block_push_and_pull if {
	bad := json.patch(img, [{"op": "replace", "path": "/scan/secrets", "value": [{"rule_id": "private-key", "path": "/root/.ssh/id_rsa"}]}])
	outcome("push", bad) == {"secrets": {"image rampart.example/acme/web:1.4 holds a secret (private-key) in /root/.ssh/id_rsa"}}
	outcome("pull", bad) == outcome("push", bad)
}

test_unsigned_pull if {
	outcome("pull", object.remove(img, ["signatures"])) == {"signed": {"image rampart.example/acme/web:1.4 carries no verified signature by a trusted key (rampart)"}}
}

test_root_user if {
	every user in ["", "0", "root", "0:0", "root:wheel"] {
		outcome("push", json.patch(img, [{"op": "replace", "path": "/config/user", "value": user}])) == {"non_root": {sprintf("image rampart.example/acme/web:1.4 runs as root (config user %q)", [user])}}
	}
	outcome("push", json.patch(img, [{"op": "replace", "path": "/config/user", "value": "app:app"}])) == {}
}

test_base_image_on_push if {
	outcome("push", object.union(img, {"base_image": "ubuntu:24.04"})) == {"base_images": {"image rampart.example/acme/web:1.4 is built on \"ubuntu:24.04\", which is not an approved base image"}}
	outcome("pull", object.union(img, {"base_image": "ubuntu:24.04"})) == {}
}
