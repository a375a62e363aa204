# METADATA
# title: airlock default decision
# description: >-
#   Decides whether one MCP message may pass through airlock: allow, deny,
#   or hold for human approval. Tuned by data.airlock.rules
#   (policies/data.yaml); the input and decision schema is in
#   policies/README.md.
package airlock

# ---------------------------------------------------------------------------
# The decision. Deny wins over approval, approval over allow.
# ---------------------------------------------------------------------------

decision := d if {
	reason := deny_reason
	d := deny_decision(reason)
} else := d if {
	approval_reason
	id := grant_id
	d := granted_decision(sprintf("%s %q on target %q allowed by grant %q", [item.label, item.name, input.target.name, id]), id)
} else := d if {
	reason := approval_reason
	d := approval_decision(reason)
} else := d if {
	reason := allow_reason
	d := allow_decision(reason)
} else := deny_decision(sprintf("no airlock rule allows method %q on target %q", [input.mcp.method, input.target.name]))

# Decision builders, also used by policies layered on this one (examples/).

deny_decision(reason) := {
	"outcome": "deny",
	"reason": reason,
	"masking_profile": masking_profile,
	"record": record,
}

allow_decision(reason) := {
	"outcome": "allow",
	"reason": reason,
	"masking_profile": masking_profile,
	"record": record,
}

granted_decision(reason, id) := object.union(allow_decision(reason), {"grant": id})

approval_decision(reason) := {
	"outcome": "approval_required",
	"reason": reason,
	"approval": approval,
	"masking_profile": masking_profile,
	"record": record,
}

# ---------------------------------------------------------------------------
# Settings: rules["*"] deep-merged with rules[<target>].
# ---------------------------------------------------------------------------

all_rules := r if {
	r := data.airlock.rules
	is_object(r)
} else := {}

settings := object.union(object.get(all_rules, "*", {}), object.get(all_rules, input.target.name, {}))

# Where a setting comes from, for reasons: rules["github"].tools.deny or
# rules["*"].tools.deny.
setting_source(path) := sprintf("rules[%q].%s", [input.target.name, concat(".", path)]) if {
	object.get(all_rules, array.concat([input.target.name], path), null) != null
} else := sprintf("rules[%q].%s", ["*", concat(".", path)])

masking_profile := object.get(settings, ["masking_profile"], "")

record := object.get(settings, ["record"], true)

single_use := object.get(settings, ["approval", "single_use"], false)

grant_duration := "0s" if {
	single_use
} else := object.get(settings, ["approval", "grant_duration"], "15m")

approval := {
	"approver_groups": object.get(settings, ["approval", "approver_groups"], []),
	"threshold": object.get(settings, ["approval", "threshold"], 1),
	"grant_duration": grant_duration,
	"single_use": single_use,
	"reason_required": object.get(settings, ["approval", "reason_required"], false),
	"break_glass_groups": object.get(settings, ["approval", "break_glass_groups"], []),
}

# ---------------------------------------------------------------------------
# Who is calling.
# ---------------------------------------------------------------------------

authenticated if {
	is_string(input.principal.subject)
	input.principal.subject != ""
}

subject := input.principal.subject

principal_groups := object.get(input, ["principal", "groups"], [])

required_groups := object.get(settings, ["required_groups"], [])

in_required_groups if count(required_groups) == 0

in_required_groups if {
	some g in principal_groups
	g in required_groups
}

# ---------------------------------------------------------------------------
# What is asked.
# ---------------------------------------------------------------------------

# Protocol plumbing: allowed for any authenticated principal who may use
# the target. List methods are named one by one (not "*/list") so that a
# server's own method ending in /list is not let through unchecked.
protocol_methods := {
	"initialize",
	"ping",
	"server/discover",
	"completion/complete",
	"logging/setLevel",
	"subscriptions/listen",
	"resources/unsubscribe",
	"tools/list",
	"prompts/list",
	"resources/list",
	"resources/templates/list",
	"tasks/list",
	"tasks/get",
	"tasks/result",
	"tasks/cancel",
}

protocol_call if input.mcp.kind == "response"

protocol_call if {
	input.mcp.method == ""
	input.request.method in {"GET", "DELETE"}
}

protocol_call if input.mcp.method in protocol_methods

protocol_call if startswith(input.mcp.method, "notifications/")

# The tool, resource or prompt a call names.
item := {"kind": "tools", "label": "tool", "name": object.get(input, ["mcp", "tool"], "")} if {
	input.mcp.method == "tools/call"
}

item := {"kind": "resources", "label": "resource", "name": object.get(input, ["mcp", "uri"], "")} if {
	input.mcp.method in {"resources/read", "resources/subscribe"}
}

item := {"kind": "prompts", "label": "prompt", "name": object.get(input, ["mcp", "prompt"], "")} if {
	input.mcp.method == "prompts/get"
}

known_method if item

known_method if protocol_call

# The first pattern of each list of rules.<kind> that matches the item's
# name; undefined when none does.
deny_match := first_match(object.get(settings, [item.kind, "deny"], []), item.name)

allow_match := first_match(object.get(settings, [item.kind, "allow"], []), item.name)

approval_match := first_match(object.get(settings, [item.kind, "require_approval"], []), item.name)

first_match(patterns, name) := ps[0] if {
	ps := [p | some p in patterns; glob.match(p, null, name)]
	count(ps) > 0
}

# A list that is not a list would match nothing, so a mistyped deny list
# would deny nothing: such rules deny every call instead.
config_errors contains sprintf("%s is %s, want a list", [setting_source(["required_groups"]), type_name(required_groups)]) if {
	not is_array(required_groups)
}

config_errors contains sprintf("%s is %s, want a list", [setting_source([item.kind, list]), type_name(v)]) if {
	some list in ["deny", "allow", "require_approval"]
	v := object.get(settings, [item.kind, list], [])
	not is_array(v)
}

# ---------------------------------------------------------------------------
# Reasons, most important first.
# ---------------------------------------------------------------------------

deny_reason := "the request has no authenticated principal" if {
	not authenticated
} else := msg if {
	count(config_errors) > 0
	msg := sprintf("airlock rules for target %q are invalid: %s", [input.target.name, concat("; ", sort(config_errors))])
} else := msg if {
	not in_required_groups
	msg := sprintf("principal %q is not in any group required for target %q (%s: %s)", [
		subject, input.target.name, setting_source(["required_groups"]),
		concat(", ", required_groups),
	])
} else := msg if {
	not known_method
	msg := sprintf("method %q is not allowed through airlock (target %q)", [input.mcp.method, input.target.name])
} else := msg if {
	item.name == ""
	msg := sprintf("%s on target %q names no %s", [input.mcp.method, input.target.name, item.label])
} else := msg if {
	p := deny_match
	msg := sprintf("%s %q on target %q is denied by pattern %q in %s", [
		item.label, item.name, input.target.name, p,
		setting_source([item.kind, "deny"]),
	])
} else := msg if {
	item
	not allow_match
	msg := sprintf("%s %q on target %q matches no pattern in %s", [
		item.label, item.name, input.target.name,
		setting_source([item.kind, "allow"]),
	])
}

approval_reason := msg if {
	item.kind in {"tools", "resources"}
	p := approval_match
	msg := sprintf("%s %q on target %q requires approval (pattern %q in %s)", [
		item.label, item.name, input.target.name, p,
		setting_source([item.kind, "require_approval"]),
	])
}

allow_reason := "client response to a server request" if {
	input.mcp.kind == "response"
} else := msg if {
	input.mcp.method == ""
	msg := sprintf("%s on the MCP endpoint of target %q", [input.request.method, input.target.name])
} else := msg if {
	protocol_call
	msg := sprintf("protocol method %q on target %q", [input.mcp.method, input.target.name])
} else := msg if {
	item
	msg := sprintf("%s %q allowed on target %q", [item.label, item.name, input.target.name])
}

# ---------------------------------------------------------------------------
# Grants: an active grant for this principal, target and tool or resource
# (and, when the grant pins them, these exact arguments) lets a call that
# needs approval through. input.grants holds only grants that are active
# at the time of the call (the grant store leaves out expired, consumed
# and revoked ones) and whose argument constraint, if any, the call's
# arguments meet (airlock compares them as JSON values), so this policy
# reads neither input.time nor input.mcp.arguments and its decisions can be
# cached exactly across calls that differ only in their arguments.
# ---------------------------------------------------------------------------

matching_grants contains g if {
	item.kind in {"tools", "resources"}
	some g in object.get(input, "grants", [])
	g.principal == input.principal.subject
	g.target == input.target.name
	grant_covers_item(g)
}

grant_covers_item(g) if {
	item.kind == "tools"
	g.tool == item.name
}

grant_covers_item(g) if {
	item.kind == "resources"
	g.resource == item.name
}

# A grant that lasts is used before a single-use one; ties go to the
# smallest id, so the choice is stable.
grant_id := id if {
	ids := sort([g.id | some g in matching_grants; not g.single_use])
	count(ids) > 0
	id := ids[0]
} else := id if {
	ids := sort([g.id | some g in matching_grants; g.single_use])
	count(ids) > 0
	id := ids[0]
}
