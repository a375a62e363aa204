# METADATA
# title: approval outside business hours
# description: >-
#   The default decision, except that outside business hours every tool call
#   the default would allow is held for approval, unless an active grant
#   covers it. Select it with the decision query
#   data.airlock.examples.business_hours.decision; edit business_hours to
#   change the days, hours or time zone.
package airlock.examples.business_hours

import data.airlock

business_hours := {
	"timezone": "UTC",
	"days": {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"},
	"start_hour": 9, # inclusive
	"end_hour": 18, # exclusive
}

in_business_hours if {
	ns := input.time.unix_ns
	time.weekday([ns, business_hours.timezone]) in business_hours.days
	[hour, _, _] := time.clock([ns, business_hours.timezone])
	hour >= business_hours.start_hour
	hour < business_hours.end_hour
}

base := airlock.decision

decision := base if {
	in_business_hours
} else := base if {
	# Only tool calls are held; protocol methods, reads of resources and
	# prompts follow the default.
	input.mcp.method != "tools/call"
} else := base if {
	# Deny stays deny, approval stays approval, a granted call stays granted.
	base.outcome != "allow"
} else := base if {
	base.grant
} else := d if {
	id := airlock.grant_id
	d := airlock.granted_decision(
		sprintf(
			"tool %q on target %q allowed outside business hours by grant %q",
			[input.mcp.tool, input.target.name, id],
		),
		id,
	)
} else := airlock.approval_decision(sprintf(
	"tool %q on target %q requires approval outside business hours (%s %d:00-%d:00 %s)",
	[
		input.mcp.tool, input.target.name,
		concat(",", [substring(day, 0, 3) | some day in ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]; day in business_hours.days]),
		business_hours.start_hour, business_hours.end_hour, business_hours.timezone,
	],
))
