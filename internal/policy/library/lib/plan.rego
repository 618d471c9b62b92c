# Helpers for OpenTofu/Terraform plans (tofu show -json).
package rampart.lib.plan

# changed holds the resource changes that create or update a resource,
# with the values it will have.
changed contains rc if {
	some rc in input.plan.resource_changes
	some a in rc.change.actions
	a in {"create", "update"}
	is_object(rc.change.after)
}

environment := object.get(input, ["environment", "name"], "")

protected if object.get(input, ["environment", "protected"], false) == true
