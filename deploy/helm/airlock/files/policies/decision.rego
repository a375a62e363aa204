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

# What approving grants (the request's scope). Least by default: this exact
# call, once (single_use, arguments pinned). approval.overrides widens it
# only where policy data says so: an object whose keys are name globs (as
# in require_approval, matched in sorted order, first wins) and whose
# values set single_use, grant_duration and pin_arguments for the tools or
# resources they match.
approval_overrides := o if {
	o := object.get(settings, ["approval", "overrides"], {})
	is_object(o)
} else := {}

approval_override_pattern := first_match(sort(object.keys(approval_overrides)), item.name)

approval_settings := object.union(object.get(settings, "approval", {}), approval_overrides[approval_override_pattern]) if {
	is_object(approval_overrides[approval_override_pattern])
} else := object.get(settings, "approval", {})

single_use := object.get(approval_settings, "single_use", true)

grant_duration := "0s" if {
	single_use
} else := object.get(approval_settings, "grant_duration", "15m")

# A time-bound grant covers only the held call's arguments unless policy
# data sets pin_arguments: false (this tool with any arguments).
pin_arguments := object.get(approval_settings, "pin_arguments", true)

approval := {
	"approver_groups": object.get(settings, ["approval", "approver_groups"], []),
	"threshold": object.get(settings, ["approval", "threshold"], 1),
	"grant_duration": grant_duration,
	"single_use": single_use,
	"pin_arguments": pin_arguments,
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

protocol_call if input.mcp.method in client_notifications

# The notifications a client may send, per the MCP schema's
# ClientNotification (2024-11-05 through 2026-07-28). Any other
# notifications/* name is denied: a server may act on a name airlock does
# not know.
client_notifications := {
	"notifications/initialized",
	"notifications/cancelled",
	"notifications/progress",
	"notifications/roots/list_changed",
	"notifications/tasks/status",
}

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

# completion/complete is about the prompt or resource its params.ref names,
# and follows that prompt's or resource's rules.
item := {"kind": "prompts", "label": "prompt", "name": input.mcp.prompt} if {
	completion
	object.get(input, ["mcp", "prompt"], "") != ""
}

item := {"kind": "resources", "label": "resource", "name": object.get(input, ["mcp", "uri"], "")} if {
	completion
	object.get(input, ["mcp", "prompt"], "") == ""
}

completion if input.mcp.method == "completion/complete"

# ---------------------------------------------------------------------------
# Names. airlock computes, from the raw name (input.mcp.name, the same
# string as item.name): name_normalized (NFKC, case-folded), name_words
# (split at every non-letter/digit, camelCase and acronym boundaries) and
# name_suspicious (why the name cannot be trusted: control, zero-width,
# bidi or other invisible characters, mixed scripts; "" when it can).
# Another host of this policy (opa test, OPA beside Envoy) may not: then an
# ASCII approximation is used.
# ---------------------------------------------------------------------------

name_facts_given if is_array(object.get(input, ["mcp", "name_words"], null))

name_normalized := input.mcp.name_normalized if {
	name_facts_given
} else := lower(item.name)

name_words := input.mcp.name_words if {
	name_facts_given
} else := [w |
	# camelCase and acronym boundaries, then any non-alphanumeric run.
	spaced := regex.replace(regex.replace(item.name, `([a-z0-9])([A-Z])`, "$1 $2"), `([A-Z]+)([A-Z][a-z])`, "$1 $2")
	some w in regex.split(`[^a-z0-9]+`, lower(spaced))
	w != ""
]

name_suspicious := input.mcp.name_suspicious if {
	name_facts_given
} else := "control, zero-width or bidi character" if {
	regex.match(`[\x00-\x1f\x7f-\x9f\x{200B}-\x{200F}\x{202A}-\x{202E}\x{2060}-\x{2069}\x{FEFF}]`, item.name)
} else := ""

# The words that hold a call of this kind for approval: rules.<kind>.
# destructive_verbs, or, when no rules set it, default_destructive_verbs.
# Entries are plain lower-case words; an entry of several words joined by
# "_", "-", ".", ":", "/" or a space ("send_payment") matches those words in
# a row. Prompts are never held, so they have none.
destructive_verbs := settings[item.kind].destructive_verbs if {
	item.kind in {"tools", "resources"}
} else := default_destructive_verbs[item.kind]

# The shipped defaults, used when data.yaml does not set the lists (the same
# lists as policies/data.yaml, which operators edit). A test keeps the two
# equal.
default_destructive_verbs := {
	"tools": [
		"delete", "del", "remove", "rm", "rmdir", "unlink", "drop", "truncate",
		"destroy", "purge", "wipe", "erase", "shred", "exec", "execute", "run",
		"shell", "sh", "bash", "eval", "spawn", "sudo", "kill", "terminate",
		"shutdown", "reboot", "transfer", "pay", "payment", "send_payment",
		"withdraw", "refund", "force", "revoke", "reset", "format", "overwrite",
		"uninstall", "disable",
	],
	"resources": [],
}

# The first entry of destructive_verbs (its words joined by spaces) found
# as whole words in the name; undefined when none is. One regular
# expression over the joined words rather than a loop over the entries:
# this runs for every call.
destructive_match := m[1] if {
	count(destructive_verbs) > 0
	alternatives := strings.replace_n(entry_separators, lower(concat("|", destructive_verbs)))
	pattern := sprintf(`(?:^| )(%s)(?: |$)`, [alternatives])
	m := regex.find_all_string_submatch_n(pattern, concat(" ", name_words), 1)[0]
}

entry_separators := {"_": " ", "-": " ", ".": " ", ":": " ", "/": " "}

known_method if item

known_method if protocol_call

# The first pattern of each list of rules.<kind> that matches the item's
# name; undefined when none does.
deny_match := first_match(object.get(settings, [item.kind, "deny"], []), item.name)

# Allow patterns match the name exactly as written (case-sensitive), so an
# allow list never widens through normalisation: with allow ["get_*"],
# GET_secrets is not allowed.
allow_match := ps[0] if {
	ps := [p | some p in object.get(settings, [item.kind, "allow"], []); glob.match(p, null, item.name)]
	count(ps) > 0
}

approval_match := first_match(object.get(settings, [item.kind, "require_approval"], []), item.name)

# Deny and require_approval patterns match the raw name as written and the
# normalised name (so "delete_*" also matches DELETE_all and ＤＥＬＥＴＥ_all):
# normalising can only add matches to these lists. Patterns are written in
# lower case, as the normalised name is.
first_match(patterns, name) := ps[0] if {
	ps := matching_patterns(patterns, name)
	count(ps) > 0
}

matching_patterns(patterns, name) := [p | some p in patterns; glob.match(p, null, name)] if {
	normalized(name) == name
} else := [p |
	some p in patterns
	some s in [normalized(name), name]
	glob.match(p, null, s)
]

normalized(name) := name_normalized if {
	name == item.name
} else := lower(name)

# A list that is not a list would match nothing, so a mistyped deny list
# would deny nothing: such rules deny every call instead.
config_errors contains sprintf("%s is %s, want a list", [setting_source(["required_groups"]), type_name(required_groups)]) if {
	not is_array(required_groups)
}

config_errors contains sprintf("%s is %s, want a list", [setting_source([item.kind, list]), type_name(v)]) if {
	some list in ["deny", "allow", "require_approval", "destructive_verbs"]
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
	completion
	object.get(input, ["mcp", "prompt"], "") == ""
	object.get(input, ["mcp", "uri"], "") == ""
	msg := sprintf("completion/complete on target %q names no prompt or resource (params.ref)", [input.target.name])
} else := msg if {
	completion
	object.get(input, ["mcp", "prompt"], "") != ""
	object.get(input, ["mcp", "uri"], "") != ""
	msg := sprintf("completion/complete on target %q names both a prompt and a resource", [input.target.name])
} else := msg if {
	item.name == ""
	msg := sprintf("%s on target %q names no %s", [input.mcp.method, input.target.name, item.label])
} else := msg if {
	name_facts_given
	object.get(input, ["mcp", "name"], "") != item.name
	msg := sprintf("%s on target %q: the name facts in the input are for %q, not %q", [input.mcp.method, input.target.name, input.mcp.name, item.name])
} else := msg if {
	name_suspicious != ""
	msg := sprintf("%s %q on target %q is denied because of its name: %s", [item.label, item.name, input.target.name, name_suspicious])
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
} else := msg if {
	# Completions are not held for approval (no one should approve an
	# autocomplete, and a grant covers calls, not completions): the
	# completion of something that needs approval is denied.
	completion
	why := item_approval_reason
	msg := sprintf("completion/complete for %s is denied: %s", [item.label, why])
}

# Why the item needs approval; undefined when it does not.
item_approval_reason := msg if {
	item.kind in {"tools", "resources"}
	p := approval_match
	msg := sprintf("%s %q on target %q requires approval (pattern %q in %s)", [
		item.label, item.name, input.target.name, p,
		setting_source([item.kind, "require_approval"]),
	])
} else := msg if {
	v := destructive_match
	msg := sprintf("%s %q on target %q requires approval (%q is in %s)", [
		item.label, item.name, input.target.name, v,
		destructive_verbs_source,
	])
}

destructive_verbs_source := setting_source([item.kind, "destructive_verbs"]) if {
	object.get(settings, [item.kind, "destructive_verbs"], null) != null
} else := sprintf("the default destructive verbs for %s (decision.rego default_destructive_verbs)", [item.kind])

approval_reason := msg if {
	not completion
	msg := item_approval_reason
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
