# Helpers for container image references.
package rampart.lib.images

import data.rampart.config.settings

# registry is the registry host of a reference: its first element when
# that looks like a host, else docker.io.
registry(ref) := lower(first) if {
	parts := split(ref, "/")
	count(parts) > 1
	first := parts[0]
	is_host(first)
} else := "docker.io"

is_host(s) if contains(s, ".")

is_host(s) if contains(s, ":")

is_host("localhost")

# repository is the reference without tag and digest.
repository(ref) := r if {
	name := split(ref, "@")[0]
	parts := split(name, "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	r := substring(name, 0, count(name) - count(last) + indexof(last, ":"))
} else := split(ref, "@")[0]

# tag is the tag of a reference, "" when it has none.
tag(ref) := t if {
	parts := split(split(ref, "@")[0], "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	t := substring(last, indexof(last, ":") + 1, -1)
} else := ""

# pinned_by_digest holds for references that name a digest.
pinned_by_digest(ref) if contains(ref, "@sha256:")

# latest holds for references that move: the tag latest, or no tag and no
# digest.
latest(ref) if {
	not pinned_by_digest(ref)
	tag(ref) in {"", "latest"}
}

# allowed holds the registries images may come from.
allowed contains lower(r) if some r in settings.allowed_registries

allowed contains lower(settings.rampart_registry) if settings.rampart_registry != ""

allowed_registry(ref) if registry(ref) in allowed

# allowed_text lists the allowed registries for messages.
allowed_text := concat(", ", sort([r | some r in allowed])) if count(allowed) > 0

else := "none configured: set allowed_registries in policy.yaml"

# approved_base holds for a base image of an approved repository
# (approved_base_images holds repository globs).
approved_base(ref) if {
	some pattern in settings.approved_base_images
	glob.match(pattern, ["/"], repository(ref))
}
