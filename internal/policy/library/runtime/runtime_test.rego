package rampart.tests.runtime

import data.rampart.gates.runtime

settings := object.union(data.rampart.config.settings, {"rampart_registry": "rampart.example"})

pod(name, spec) := {"kind": "Pod", "namespace": "shop", "name": name, "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "shop"}, "spec": spec}}

good_spec := {"securityContext": {"runAsNonRoot": true}, "containers": [{"name": "app", "image": "rampart.example/shop/web:1", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]}

outcome(workloads) := {name: msgs |
	gate := runtime with input as {"environment": "production", "workloads": workloads} with data.rampart.config.settings as settings
	some name, pol in gate
	msgs := {d.message | some d in pol.deny}
	count(msgs) > 0
}

test_running_workloads if {
	outcome([pod("ok", good_spec)]) == {}
	bad := {"hostNetwork": true, "volumes": [{"name": "sock", "hostPath": {"path": "/var/run/docker.sock"}}], "containers": [{"name": "app", "image": "quay.io/x/y:1", "securityContext": {"privileged": true}}]}
	outcome([pod("ok", good_spec), pod("bad", bad)]) == {
		"node_access": {
			"Pod/shop/bad: container app is privileged",
			"Pod/shop/bad: the pod shares the node's network namespace (hostNetwork: true)",
			"Pod/shop/bad: volume sock mounts /var/run/docker.sock from the node (hostPath)",
		},
		"non_root": {"Pod/shop/bad: container app may run as root"},
		"registries": {"Pod/shop/bad: container app uses quay.io/x/y:1 from quay.io, which is not an allowed registry (allowed: rampart.example)"},
		"limits": {"Pod/shop/bad: container app sets no cpu limit", "Pod/shop/bad: container app sets no memory limit"},
	}
}
