package rampart.tests.lib

import data.rampart.lib.images
import data.rampart.lib.severity

test_registry if {
	cases := {
		"nginx": "docker.io",
		"library/nginx:1": "docker.io",
		"ghcr.io/acme/web:1": "ghcr.io",
		"localhost/web": "localhost",
		"Registry.Example:8443/a/b@sha256:00": "registry.example:8443",
	}
	every ref, want in cases {
		images.registry(ref) == want
	}
}

test_repository_and_tag if {
	images.repository("registry.example:8443/a/b:1.2@sha256:00") == "registry.example:8443/a/b"
	images.repository("registry.example:8443/a/b") == "registry.example:8443/a/b"
	images.tag("registry.example:8443/a/b:1.2@sha256:00") == "1.2"
	images.tag("registry.example:8443/a/b") == ""
}

test_latest if {
	images.latest("nginx")
	images.latest("nginx:latest")
	not images.latest("nginx:1.27")
	not images.latest("nginx@sha256:0123")
	not images.latest("nginx:latest@sha256:0123")
}

test_severity if {
	severity.at_least("CRITICAL", "high")
	severity.at_least("high", "high")
	not severity.at_least("medium", "high")
}
