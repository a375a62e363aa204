package airlock.examples.group_scoped_test

import data.airlock.examples.group_scoped

rules := {"*": {
	"tools": {"allow": ["*"], "deny": ["drop_*"], "require_approval": ["delete_*"]},
	"approval": {"approver_groups": ["approvers"], "grant_duration": "15m"},
}}

mk(groups, method, tool) := {
	"principal": {"subject": "bob", "groups": groups},
	"target": {"name": "helpdesk"},
	"mcp": {"method": method, "kind": "request", "tool": tool, "arguments": null},
	"request": {"method": "POST"},
	"grants": [],
	"time": {"unix_ns": 0},
}

decide(inp) := d if {
	d := group_scoped.decision with input as inp with data.airlock.rules as rules
}

test_support_reads if {
	decide(mk(["support"], "tools/call", "get_ticket")).outcome == "allow"
	decide(mk(["support"], "tools/call", "add_comment")).outcome == "allow"
}

test_support_cannot_write if {
	d := decide(mk(["support"], "tools/call", "close_ticket"))
	d.outcome == "deny"
	d.reason == `tool "close_ticket" on target "helpdesk" is not given to any group of "bob" (groups: support; see examples/group_scoped.rego group_tools)`
}

test_groups_add_up if {
	decide(mk(["support", "analysts"], "tools/call", "export_report")).outcome == "allow"
}

test_no_group_denied if {
	decide(mk([], "tools/call", "get_ticket")).outcome == "deny"
}

test_engineering_still_needs_approval_and_deny if {
	decide(mk(["engineering"], "tools/call", "delete_ticket")).outcome == "approval_required"
	decide(mk(["engineering"], "tools/call", "drop_table")).outcome == "deny"
}

test_protocol_methods_need_no_group if {
	decide(mk([], "tools/list", "")).outcome == "allow"
}
