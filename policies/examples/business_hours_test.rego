package airlock.examples.business_hours_test

import data.airlock.examples.business_hours

rules := {"*": {
	"tools": {"allow": ["*"], "deny": ["danger"], "require_approval": ["delete_*"]},
	# single_use: false because single use is the default since issue 15
	# and this test is about the grant's duration.
	"approval": {"approver_groups": ["approvers"], "grant_duration": "1h", "single_use": false},
}}

# Wednesday 2026-01-07 10:30 UTC and 22:30 UTC; Saturday 2026-01-10 10:30 UTC.
wed_day := time.parse_rfc3339_ns("2026-01-07T10:30:00Z")

wed_night := time.parse_rfc3339_ns("2026-01-07T22:30:00Z")

saturday := time.parse_rfc3339_ns("2026-01-10T10:30:00Z")

mk(ns, method, tool, grants) := {
	"principal": {"subject": "alice", "groups": []},
	"target": {"name": "crm"},
	"mcp": {"method": method, "kind": "request", "tool": tool, "arguments": null},
	"request": {"method": "POST"},
	"grants": grants,
	"time": {"unix_ns": ns},
}

decide(inp) := d if {
	d := business_hours.decision with input as inp with data.airlock.rules as rules
}

grant(tool, ns) := {
	"id": "g-night", "target": "crm", "tool": tool, "resource": "", "arguments": null,
	"single_use": true, "expiry_ns": ns + 60000000000, "principal": "alice",
}

test_in_hours_follows_default if {
	decide(mk(wed_day, "tools/call", "update_contact", [])).outcome == "allow"
	decide(mk(wed_day, "tools/call", "delete_contact", [])).outcome == "approval_required"
}

test_night_holds_ordinary_tool if {
	d := decide(mk(wed_night, "tools/call", "update_contact", []))
	d.outcome == "approval_required"
	d.reason == `tool "update_contact" on target "crm" requires approval outside business hours (Mon,Tue,Wed,Thu,Fri 9:00-18:00 UTC)`
	d.approval.approver_groups == ["approvers"]
	d.approval.grant_duration == "1h"
}

test_weekend_holds_ordinary_tool if {
	decide(mk(saturday, "tools/call", "update_contact", [])).outcome == "approval_required"
}

test_night_grant_allows if {
	d := decide(mk(wed_night, "tools/call", "update_contact", [grant("update_contact", wed_night)]))
	d.outcome == "allow"
	d.grant == "g-night"
}

test_night_deny_stays_deny if {
	decide(mk(wed_night, "tools/call", "danger", [])).outcome == "deny"
}

test_night_protocol_methods_allowed if {
	decide(mk(wed_night, "tools/list", "", [])).outcome == "allow"
}
