# Helpers for Kubernetes checks: where pod specs and containers live in
# each kind of object, and the source line of any value.
package rampart.lib.kubernetes

# pod_spec_path is the path from an object to its pod spec, by kind.
pod_spec_path := {
	"Pod": ["spec"],
	"PodTemplate": ["template", "spec"],
	"Deployment": ["spec", "template", "spec"],
	"StatefulSet": ["spec", "template", "spec"],
	"DaemonSet": ["spec", "template", "spec"],
	"ReplicaSet": ["spec", "template", "spec"],
	"ReplicationController": ["spec", "template", "spec"],
	"Job": ["spec", "template", "spec"],
	"CronJob": ["spec", "jobTemplate", "spec", "template", "spec"],
}

# batch_kinds run to completion: probes do not apply to them.
batch_kinds := {"Job", "CronJob"}

# pods holds every pod spec of the input with its document and path.
pods contains {"doc": doc, "spec": spec, "path": path} if {
	some doc in input.documents
	path := pod_spec_path[doc.object.kind]
	spec := object.get(doc.object, path, null)
	is_object(spec)
}

# containers holds every container, init container and ephemeral
# container of the input with its pod, path and a stable resource name.
containers contains {
	"doc": pod.doc,
	"pod": pod,
	"field": field,
	"container": container,
	"path": array.concat(pod.path, [field, i]),
	"name": name,
	"resource": sprintf("%s/%s/%s", [pod.doc.resource, field, name]),
} if {
	some pod in pods
	some field in ["initContainers", "containers", "ephemeralContainers"]
	some i, container in pod.spec[field]
	is_object(container)
	name := object.get(container, "name", sprintf("%v", [i]))
}

# app_containers are the long-running containers: not init or ephemeral.
app_containers contains c if {
	some c in containers
	c.field == "containers"
}

# setting is a security setting of a container, else of its pod, with the
# path where it is set.
setting(c, key) := {"value": v, "path": array.concat(c.path, ["securityContext", key])} if {
	v := c.container.securityContext[key]
} else := {"value": v, "path": array.concat(c.pod.path, ["securityContext", key])} if {
	v := c.pod.spec.securityContext[key]
}

# line is the line of the value at path in doc, or of the nearest value
# above it that the file has.
line(doc, path) := l if {
	l := doc.lines[pointer(path)]
} else := ls[0] if {
	ls := [l |
		some n in numbers.range(count(path), 0)
		l := doc.lines[pointer(array.slice(path, 0, n))]
	]
}

# pointer writes path as a JSON pointer (RFC 6901), the keys of lines.
pointer(path) := concat("", [segment(p) | some p in path])

segment(p) := sprintf("/%d", [p]) if is_number(p)

segment(p) := concat("", ["/", strings.replace_n({"~": "~0", "/": "~1"}, p)]) if is_string(p)
