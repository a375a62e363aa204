package airlock.examples.readonly_test

import data.airlock.examples.readonly

rules := {"*": {
	"tools": {"allow": ["*"], "deny": ["get_secret"], "require_approval": ["delete_*"]},
	"resources": {"allow": ["*"]},
	"approval": {"approver_groups": ["approvers"], "grant_duration": "15m"},
}}

mk(method, tool) := {
	"principal": {"subject": "alice", "groups": []},
	"target": {"name": "wiki"},
	"mcp": {"method": method, "kind": "request", "tool": tool, "uri": "file:///x", "arguments": null},
	"request": {"method": "POST"},
	"grants": [],
	"time": {"unix_ns": 0},
}

decide(inp) := d if {
	d := readonly.decision with input as inp with data.airlock.rules as rules
}

test_read_tool_allowed if {
	every t in ["get_page", "list_spaces", "search", "search_pages", "page_get"] {
		decide(mk("tools/call", t)).outcome == "allow"
	}
}

test_write_tool_denied if {
	d := decide(mk("tools/call", "update_page"))
	d.outcome == "deny"
	d.reason == `tool "update_page" on target "wiki" is not a read and the target is read-only (examples/readonly.rego read_tools)`
}

test_write_tool_needing_approval_is_denied_outright if {
	decide(mk("tools/call", "delete_page")).outcome == "deny"
}

test_default_deny_still_applies_to_reads if {
	d := decide(mk("tools/call", "get_secret"))
	d.outcome == "deny"
	contains(d.reason, "rules[\"*\"].tools.deny")
}

test_other_methods_follow_default if {
	decide(mk("tools/list", "")).outcome == "allow"
	decide(mk("resources/read", "")).outcome == "allow"
	decide(mk("admin/reset", "")).outcome == "deny"
}
