# Helpers for container image references.
package rampart.lib.image

# tag is the tag of an image reference, "" when it has none.
tag(ref) := t if {
	parts := split(split(ref, "@")[0], "/")
	last := parts[count(parts) - 1]
	contains(last, ":")
	t := substring(last, indexof(last, ":") + 1, -1)
} else := ""

# unpinned holds for references that name no digest and no tag, or the
# moving tag "latest".
unpinned(ref) if {
	not contains(ref, "@")
	tag(ref) in {"", "latest"}
}
