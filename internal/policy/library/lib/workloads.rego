# Helpers for Kubernetes workloads, shared by the admission and runtime
# gates: where pod specs live in each kind of object, and the checks both
# gates make. Each check takes an object and returns a list of violations.
package rampart.lib.workloads

import data.rampart.config.settings
import data.rampart.lib.images

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

# admitted is the object an AdmissionReview asks to create or update, when
# it is a workload.
admitted := input.request.object if {
	input.request.operation in {"CREATE", "UPDATE"}
	is_object(input.request.object)
	pod_spec_path[input.request.object.kind]
}

pod_spec(obj) := spec if {
	spec := object.get(obj, pod_spec_path[obj.kind], null)
	is_object(spec)
}

# resource names an object: Kind/namespace/name (generateName* when it
# has no name yet).
resource(obj) := sprintf("%s/%s/%s", [obj.kind, namespace(obj), obj.metadata.name]) if {
	object.get(obj, ["metadata", "name"], "") != ""
} else := sprintf("%s/%s/%s*", [obj.kind, namespace(obj), object.get(obj, ["metadata", "generateName"], "")])

namespace(obj) := object.get(obj, ["metadata", "namespace"], object.get(input, ["request", "namespace"], ""))

# containers lists every container of a workload: init, regular and
# ephemeral, each with "kind" saying which.
containers(obj) := [object.union(c, {"_kind": kind}) |
	spec := pod_spec(obj)
	some kind in ["initContainers", "containers", "ephemeralContainers"]
	some c in object.get(spec, kind, [])
]

# v is a violation of a pod-level rule; vi one of a container's, naming
# its image (so that an exception may be scoped to an image).
v(obj, msg) := {"message": msg, "resource": resource(obj)}

vi(obj, msg, image) := {"message": msg, "resource": resource(obj), "image": image}

# privileged lists privileged containers.
privileged(obj) := [vi(obj, sprintf("%s: container %s is privileged", [resource(obj), c.name]), c.image) |
	some c in containers(obj)
	object.get(c, ["securityContext", "privileged"], false) == true
]

# host_namespaces lists the node namespaces the pod shares.
host_namespaces(obj) := [v(obj, sprintf("%s: the pod shares the node's %s namespace (%s: true)", [resource(obj), ns, field])) |
	spec := pod_spec(obj)
	some field, ns in {"hostNetwork": "network", "hostPID": "process", "hostIPC": "IPC"}
	object.get(spec, field, false) == true
]

# host_path lists hostPath volumes.
host_path(obj) := [v(obj, sprintf("%s: volume %s mounts %s from the node (hostPath)", [resource(obj), vol.name, vol.hostPath.path])) |
	spec := pod_spec(obj)
	some vol in object.get(spec, "volumes", [])
	is_object(vol.hostPath)
]

# effective returns a security context setting of a container, falling
# back to the pod's, and null when neither sets it. (It is always defined:
# OPA evaluates `not f(x)` as undefined, not true, when x is undefined.)
effective(obj, c, key) := object.get(c, ["securityContext", key], object.get(pod_spec(obj), ["securityContext", key], null))

# runs_as_root holds for a container that may run as root: runAsUser 0,
# or neither runAsNonRoot true nor a runAsUser above 0.
runs_as_root(obj, c) if effective(obj, c, "runAsUser") == 0

runs_as_root(obj, c) if {
	effective(obj, c, "runAsNonRoot") != true
	not above_zero(effective(obj, c, "runAsUser"))
}

above_zero(n) if {
	is_number(n)
	n > 0
}

root(obj) := [vi(obj, sprintf("%s: container %s may run as root", [resource(obj), c.name]), c.image) |
	some c in containers(obj)
	c._kind != "ephemeralContainers"
	runs_as_root(obj, c)
]

# limits lists containers without CPU or memory limits.
limits(obj) := [vi(obj, sprintf("%s: container %s sets no %s limit", [resource(obj), c.name, res]), c.image) |
	some c in containers(obj)
	c._kind != "ephemeralContainers"
	some res in ["cpu", "memory"]
	not c.resources.limits[res]
]

# registries lists images from registries that are not allowed.
registries(obj) := [vi(obj, sprintf("%s: container %s uses %s from %s, which is not an allowed registry (allowed: %s)", [resource(obj), c.name, c.image, images.registry(c.image), images.allowed_text]), c.image) |
	some c in containers(obj)
	not images.allowed_registry(c.image)
]

# latest lists images that are not pinned.
latest(obj) := [vi(obj, sprintf("%s: container %s uses %s, a moving tag", [resource(obj), c.name, c.image]), c.image) |
	some c in containers(obj)
	images.latest(c.image)
]

# labels lists required labels the object lacks.
labels(obj) := [v(obj, sprintf("%s lacks the required label %s", [resource(obj), l])) |
	some l in settings.required_labels
	not obj.metadata.labels[l]
]

# escalation lists containers that may gain privileges.
escalation(obj) := [vi(obj, sprintf("%s: container %s allows privilege escalation", [resource(obj), c.name]), c.image) |
	some c in containers(obj)
	c._kind != "ephemeralContainers"
	not object.get(c, ["securityContext", "allowPrivilegeEscalation"], true) == false
]
