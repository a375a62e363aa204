# METADATA
# title: tools scoped by group
# description: >-
#   The default decision, plus: a tool call is denied unless one of the
#   caller's groups is given a pattern in group_tools that matches the tool.
#   Select it with the decision query data.airlock.examples.group_scoped.decision.
package airlock.examples.group_scoped

import data.airlock

# Tool patterns each group may call. A caller's groups add up.
group_tools := {
	"engineering": ["*"],
	"support": ["get_*", "list_*", "search_*", "add_comment"],
	"analysts": ["query_*", "read_*", "export_report"],
}

tool_granted_to_group if {
	some g in input.principal.groups
	some p in object.get(group_tools, g, [])
	glob.match(p, null, input.mcp.tool)
}

decision := airlock.decision if {
	input.mcp.method != "tools/call"
} else := airlock.decision if {
	tool_granted_to_group
} else := airlock.deny_decision(sprintf(
	"tool %q on target %q is not given to any group of %q (groups: %s; see examples/group_scoped.rego group_tools)",
	[input.mcp.tool, input.target.name, input.principal.subject, concat(", ", input.principal.groups)],
))
