# METADATA
# title: read-only target
# description: >-
#   The default decision, except that a tool call is denied unless the tool's
#   name looks like a read (get_*, list_*, search_* ...). Use it for targets
#   an agent may look at but never change: set the decision query of those
#   targets to data.airlock.examples.readonly.decision, or copy this file and
#   adapt read_tools.
package airlock.examples.readonly

import data.airlock

# Tool name patterns that only read.
read_tools := [
	"get_*", "list_*", "search_*", "read_*", "describe_*", "query_*",
	"fetch_*", "find_*", "show_*", "view_*", "count_*", "search",
	"*_get", "*_list", "*_search", "*_read",
]

read_tool if {
	some p in read_tools
	glob.match(p, null, input.mcp.tool)
}

decision := airlock.decision if {
	input.mcp.method != "tools/call"
} else := airlock.decision if {
	read_tool
} else := airlock.deny_decision(sprintf(
	"tool %q on target %q is not a read and the target is read-only (examples/readonly.rego read_tools)",
	[input.mcp.tool, input.target.name],
))
