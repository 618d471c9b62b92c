package rampart.tests.admission

import data.rampart.gates.admission

settings := object.union(data.rampart.config.settings, {"rampart_registry": "rampart.example:8443", "required_labels": ["app.kubernetes.io/name"]})

good_pod := {
	"apiVersion": "v1",
	"kind": "Pod",
	"metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
	"spec": {
		"securityContext": {"runAsNonRoot": true},
		"containers": [{
			"name": "app",
			"image": "rampart.example:8443/shop/web:1.4",
			"resources": {"limits": {"cpu": "500m", "memory": "256Mi"}},
			"securityContext": {"allowPrivilegeEscalation": false},
		}],
	},
}

review(op, obj) := {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
	"uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
	"kind": {"group": "", "version": "v1", "kind": obj.kind},
	"namespace": "shop",
	"operation": op,
	"object": obj,
}}

outcome(obj) := {name: msgs |
	gate := admission with input as review("CREATE", obj) with data.rampart.config.settings as settings
	some name, pol in gate
	msgs := {d.message | some d in pol.deny}
	count(msgs) > 0
}

patch(obj, ops) := json.patch(obj, ops)

test_good_pod_admitted if {
	outcome(good_pod) == {}
}

test_privileged if {
	outcome(patch(good_pod, [{"op": "add", "path": "/spec/containers/0/securityContext/privileged", "value": true}])) == {"privileged": {"Pod/shop/web: container app is privileged"}}
}

test_host_path if {
	outcome(patch(good_pod, [{"op": "add", "path": "/spec/volumes", "value": [{"name": "root", "hostPath": {"path": "/"}}]}])) == {"host_path": {"Pod/shop/web: volume root mounts / from the node (hostPath)"}}
}

test_host_namespaces if {
	outcome(patch(good_pod, [{"op": "add", "path": "/spec/hostNetwork", "value": true}, {"op": "add", "path": "/spec/hostPID", "value": true}])) == {"host_namespaces": {
		"Pod/shop/web: the pod shares the node's network namespace (hostNetwork: true)",
		"Pod/shop/web: the pod shares the node's process namespace (hostPID: true)",
	}}
}

test_non_root if {
	outcome(patch(good_pod, [{"op": "remove", "path": "/spec/securityContext"}])) == {"non_root": {"Pod/shop/web: container app may run as root"}}

	# A container's runAsUser 0 overrides the pod's runAsNonRoot.
	outcome(patch(good_pod, [{"op": "add", "path": "/spec/containers/0/securityContext/runAsUser", "value": 0}])) == {"non_root": {"Pod/shop/web: container app may run as root"}}

	# A numeric non-root user is enough.
	outcome(patch(good_pod, [{"op": "replace", "path": "/spec/securityContext", "value": {"runAsUser": 1000}}])) == {}
}

test_limits if {
	outcome(patch(good_pod, [{"op": "remove", "path": "/spec/containers/0/resources/limits/memory"}])) == {"limits": {"Pod/shop/web: container app sets no memory limit"}}
}

test_registries_and_latest if {
	outcome(patch(good_pod, [{"op": "replace", "path": "/spec/containers/0/image", "value": "nginx"}])) == {
		"registries": {"Pod/shop/web: container app uses nginx from docker.io, which is not an allowed registry (allowed: rampart.example:8443)"},
		"latest": {"Pod/shop/web: container app uses nginx, a moving tag"},
	}
	outcome(patch(good_pod, [{"op": "replace", "path": "/spec/containers/0/image", "value": "rampart.example:8443/shop/web@sha256:0123"}])) == {}
}

test_required_labels_and_escalation_warn if {
	outcome(patch(good_pod, [{"op": "remove", "path": "/metadata/labels"}, {"op": "remove", "path": "/spec/containers/0/securityContext"}])) == {
		"labels": {"Pod/shop/web lacks the required label app.kubernetes.io/name"},
		"privilege_escalation": {"Pod/shop/web: container app allows privilege escalation"},
	}
	admission.labels.metadata.mode == "warn"
	admission.privilege_escalation.metadata.mode == "warn"
}

test_deployment_template_and_init_containers if {
	deploy := {
		"apiVersion": "apps/v1",
		"kind": "Deployment",
		"metadata": {"name": "web", "namespace": "shop", "labels": {"app.kubernetes.io/name": "web"}},
		"spec": {"template": {"spec": object.union(good_pod.spec, {"initContainers": [{"name": "setup", "image": "rampart.example:8443/shop/setup:1", "securityContext": {"privileged": true, "allowPrivilegeEscalation": false}, "resources": {"limits": {"cpu": "1", "memory": "1Gi"}}}]})}},
	}
	outcome(deploy) == {"privileged": {"Deployment/shop/web: container setup is privileged"}}
}

test_generate_name_and_request_namespace if {
	pod := patch(good_pod, [{"op": "remove", "path": "/metadata/name"}, {"op": "remove", "path": "/metadata/namespace"}, {"op": "add", "path": "/metadata/generateName", "value": "web-"}, {"op": "add", "path": "/spec/hostIPC", "value": true}])
	outcome(pod) == {"host_namespaces": {"Pod/shop/web-*: the pod shares the node's IPC namespace (hostIPC: true)"}}
}

test_deletes_and_other_kinds_are_not_judged if {
	bad := patch(good_pod, [{"op": "add", "path": "/spec/hostNetwork", "value": true}])
	ds := admission.host_namespaces.deny with input as review("DELETE", bad) with data.rampart.config.settings as settings
	count(ds) == 0
	cm := {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}, "data": {}}
	outcome(cm) == {}
}
