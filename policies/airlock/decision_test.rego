package airlock_test

import data.airlock

# 2026-01-01T00:00:00Z
now_ns := 1767225600000000000

hour_ns := 3600000000000

# Rules used by most tests, independent of the shipped data.yaml.
rules := {
	"*": {
		"required_groups": [],
		"tools": {
			"allow": ["*"],
			"deny": ["danger_*"],
			"require_approval": ["delete_*", "exec*"],
		},
		"resources": {
			"allow": ["file:///public/*", "db://reports/*"],
			"deny": ["file:///public/secret*"],
			"require_approval": ["db://reports/payroll*"],
		},
		"prompts": {"allow": ["*"], "deny": ["jailbreak*"]},
		"approval": {
			"approver_groups": ["approvers"],
			"threshold": 1,
			"grant_duration": "15m",
			"single_use": false,
			"reason_required": true,
			"break_glass_groups": ["oncall"],
		},
		"masking_profile": "default",
		"record": true,
	},
	"github": {
		"required_groups": ["eng", "sre"],
		"tools": {"deny": ["delete_repo"]},
		"masking_profile": "strict",
	},
	"payments": {
		"tools": {"allow": ["get_*", "transfer_funds"], "require_approval": ["transfer_*"]},
		"approval": {"approver_groups": ["finance"], "threshold": 2, "single_use": true},
		"record": false,
	},
}

principal := {
	"issuer": "https://idp.example.com",
	"subject": "alice",
	"user": "alice@example.com",
	"client_id": "agent-1",
	"scopes": ["mcp"],
	"groups": ["eng"],
	"audience": ["https://airlock.example.com/mcp/github"],
	"expiry": "2026-01-01T01:00:00Z",
	"token_id": "jti-1",
	"claims": {},
}

# mk builds an input for target and MCP message fields msg (merged over a
# tools/call request), with the given grants.
mk(tgt, msg, grants) := {
	"principal": principal,
	"target": {"name": tgt, "resource": sprintf("https://airlock.example.com/mcp/%s", [tgt]), "scopes_required": []},
	"mcp": object.union(
		{
			"method": "tools/call", "kind": "request", "id": 1, "tool": "", "prompt": "", "uri": "",
			"arguments": null, "protocol_version": "2025-11-25", "session_id": "s1", "batch": false,
		},
		msg,
	),
	"request": {"method": "POST", "path": sprintf("/mcp/%s", [tgt]), "host": "airlock.example.com", "headers": {}},
	"grants": grants,
	"time": {"now": "2026-01-01T00:00:00Z", "unix_ns": now_ns},
}

call(tgt, tool) := mk(tgt, {"tool": tool}, [])

decide(inp) := d if {
	d := airlock.decision with input as inp with data.airlock.rules as rules
}

grant(overrides) := object.union(
	{
		"id": "g1", "target": "jira", "tool": "delete_issue", "resource": "",
		"arguments": null, "single_use": false,
		"expiry": "2026-01-01T01:00:00Z", "expiry_ns": now_ns + hour_ns,
		"principal": "alice",
	},
	overrides,
)

# --- tools ---------------------------------------------------------------

test_allowed_tool if {
	d := decide(call("jira", "get_issue"))
	d.outcome == "allow"
	d.reason == `tool "get_issue" allowed on target "jira"`
	d.masking_profile == "default"
	d.record == true
	not d.grant
}

test_denied_tool_by_pattern if {
	d := decide(call("jira", "danger_zone"))
	d.outcome == "deny"
	d.reason == `tool "danger_zone" on target "jira" is denied by pattern "danger_*" in rules["*"].tools.deny`
}

test_denied_tool_by_target_rule if {
	d := decide(call("github", "delete_repo"))
	d.outcome == "deny"
	d.reason == `tool "delete_repo" on target "github" is denied by pattern "delete_repo" in rules["github"].tools.deny`
	d.masking_profile == "strict"
}

test_target_deny_list_replaces_default if {
	# github's tools.deny replaces "*"'s, so danger_* is not denied there.
	d := decide(call("github", "danger_zone"))
	d.outcome == "allow"
}

test_tool_not_in_allow_list if {
	d := decide(call("payments", "refund"))
	d.outcome == "deny"
	d.reason == `tool "refund" on target "payments" matches no pattern in rules["payments"].tools.allow`
	d.record == false
}

test_deny_wins_over_approval if {
	r := json.patch(rules, [{"op": "add", "path": "/*/tools/deny/-", "value": "delete_everything"}])
	d := airlock.decision with input as call("jira", "delete_everything") with data.airlock.rules as r
	d.outcome == "deny"
}

test_approval_required_tool if {
	d := decide(call("jira", "delete_issue"))
	d.outcome == "approval_required"
	d.reason == `tool "delete_issue" on target "jira" requires approval (pattern "delete_*" in rules["*"].tools.require_approval)`
	d.approval == {
		"approver_groups": ["approvers"],
		"threshold": 1,
		"grant_duration": "15m",
		"single_use": false,
		"reason_required": true,
		"break_glass_groups": ["oncall"],
	}
}

test_approval_single_use_per_target if {
	d := decide(call("payments", "transfer_funds"))
	d.outcome == "approval_required"
	d.approval.approver_groups == ["finance"]
	d.approval.threshold == 2
	d.approval.single_use == true
	d.approval.grant_duration == "0s"
	d.approval.break_glass_groups == ["oncall"] # inherited from "*"
}

test_tool_call_without_name if {
	d := decide(call("jira", ""))
	d.outcome == "deny"
	d.reason == `tools/call on target "jira" names no tool`
}

# --- grants --------------------------------------------------------------

test_grant_match_allows if {
	d := decide(mk("jira", {"tool": "delete_issue"}, [grant({})]))
	d.outcome == "allow"
	d.grant == "g1"
	d.reason == `tool "delete_issue" on target "jira" allowed by grant "g1"`
}

test_no_grant_means_approval if {
	d := decide(mk("jira", {"tool": "delete_issue"}, []))
	d.outcome == "approval_required"
	not d.grant
}

test_grant_for_another_user if {
	d := decide(mk("jira", {"tool": "delete_issue"}, [grant({"principal": "mallory"})]))
	d.outcome == "approval_required"
}

test_grant_for_another_target if {
	d := decide(mk("jira", {"tool": "delete_issue"}, [grant({"target": "github"})]))
	d.outcome == "approval_required"
}

test_grant_for_another_tool if {
	d := decide(mk("jira", {"tool": "delete_issue"}, [grant({"tool": "delete_project"})]))
	d.outcome == "approval_required"
}

test_grant_does_not_override_deny if {
	g := grant({"target": "github", "tool": "delete_repo"})
	d := decide(mk("github", {"tool": "delete_repo"}, [g]))
	d.outcome == "deny"
}

test_grant_prefers_lasting_over_single_use if {
	gs := [
		grant({"id": "a-single", "single_use": true}),
		grant({"id": "z-lasting"}),
	]
	d := decide(mk("jira", {"tool": "delete_issue"}, gs))
	d.grant == "z-lasting"
}

test_grant_single_use_used_when_only_one if {
	d := decide(mk("jira", {"tool": "delete_issue"}, [grant({"id": "s", "single_use": true})]))
	d.outcome == "allow"
	d.grant == "s"
}

test_grant_not_needed_for_allowed_tool if {
	d := decide(mk("jira", {"tool": "get_issue"}, [grant({"tool": "get_issue"})]))
	d.outcome == "allow"
	not d.grant
}

test_grant_for_resource if {
	g := grant({"tool": "", "resource": "db://reports/payroll-2026"})
	d := decide(mk("jira", {"method": "resources/read", "uri": "db://reports/payroll-2026"}, [g]))
	d.outcome == "allow"
	d.grant == "g1"
}

# --- protocol methods ----------------------------------------------------

test_lifecycle_methods_allowed if {
	every m in [
		"initialize", "ping", "tools/list", "prompts/list", "resources/list",
		"resources/templates/list", "server/discover", "completion/complete",
		"logging/setLevel", "notifications/initialized", "notifications/cancelled",
		"subscriptions/listen", "tasks/get",
	] {
		d := decide(mk("jira", {"method": m}, []))
		d.outcome == "allow"
		d.reason == sprintf("protocol method %q on target %q", [m, "jira"])
	}
}

test_client_response_allowed if {
	d := decide(mk("jira", {"method": "", "kind": "response", "id": 7}, []))
	d.outcome == "allow"
	d.reason == "client response to a server request"
}

test_get_stream_and_delete_session_allowed if {
	every verb in ["GET", "DELETE"] {
		inp := json.patch(mk("jira", {"method": "", "kind": ""}, []), [{"op": "replace", "path": "/request/method", "value": verb}])
		d := decide(inp)
		d.outcome == "allow"
	}
}

test_post_without_method_denied if {
	d := decide(mk("jira", {"method": "", "kind": "request"}, []))
	d.outcome == "deny"
}

test_unknown_method_denied if {
	d := decide(mk("jira", {"method": "admin/shutdown"}, []))
	d.outcome == "deny"
	d.reason == `method "admin/shutdown" is not allowed through airlock (target "jira")`
}

test_custom_list_method_not_a_protocol_method if {
	d := decide(mk("jira", {"method": "secrets/list"}, []))
	d.outcome == "deny"
	contains(d.reason, `"secrets/list"`)
}

test_unauthenticated_denied if {
	inp := json.patch(mk("jira", {"method": "ping"}, []), [{"op": "replace", "path": "/principal", "value": null}])
	d := decide(inp)
	d.outcome == "deny"
	d.reason == "the request has no authenticated principal"
}

test_empty_subject_denied if {
	inp := json.patch(mk("jira", {"method": "ping"}, []), [{"op": "replace", "path": "/principal/subject", "value": ""}])
	decide(inp).outcome == "deny"
}

# --- resources and prompts -----------------------------------------------

test_resource_read_allowed if {
	d := decide(mk("jira", {"method": "resources/read", "uri": "file:///public/readme.md"}, []))
	d.outcome == "allow"
	d.reason == `resource "file:///public/readme.md" allowed on target "jira"`
}

test_resource_read_not_allowed if {
	d := decide(mk("jira", {"method": "resources/read", "uri": "file:///etc/passwd"}, []))
	d.outcome == "deny"
	d.reason == `resource "file:///etc/passwd" on target "jira" matches no pattern in rules["*"].resources.allow`
}

test_resource_read_denied_by_pattern if {
	d := decide(mk("jira", {"method": "resources/subscribe", "uri": "file:///public/secrets.txt"}, []))
	d.outcome == "deny"
	contains(d.reason, `denied by pattern "file:///public/secret*"`)
}

test_resource_approval if {
	d := decide(mk("jira", {"method": "resources/read", "uri": "db://reports/payroll-2026"}, []))
	d.outcome == "approval_required"
}

test_prompt_allowed_and_denied if {
	decide(mk("jira", {"method": "prompts/get", "prompt": "summarize"}, [])).outcome == "allow"
	d := decide(mk("jira", {"method": "prompts/get", "prompt": "jailbreak_v2"}, []))
	d.outcome == "deny"
	contains(d.reason, `prompt "jailbreak_v2"`)
}

# --- required groups -----------------------------------------------------

test_required_groups_member_allowed if {
	decide(call("github", "get_issue")).outcome == "allow"
}

test_required_groups_non_member_denied if {
	inp := json.patch(call("github", "get_issue"), [{"op": "replace", "path": "/principal/groups", "value": ["sales"]}])
	d := decide(inp)
	d.outcome == "deny"
	d.reason == `principal "alice" is not in any group required for target "github" (rules["github"].required_groups: eng, sre)`
}

test_required_groups_apply_to_protocol_methods if {
	inp := json.patch(mk("github", {"method": "tools/list"}, []), [{"op": "replace", "path": "/principal/groups", "value": []}])
	decide(inp).outcome == "deny"
}

# --- configuration edge cases --------------------------------------------

test_no_rules_denies_tools_but_allows_protocol if {
	d := airlock.decision with input as call("jira", "get_issue") with data.airlock.rules as {}
	d.outcome == "deny"
	p := airlock.decision with input as mk("jira", {"method": "initialize"}, []) with data.airlock.rules as {}
	p.outcome == "allow"
}

# --- the shipped data.yaml -----------------------------------------------

test_shipped_rules_hold_high_risk_tools if {
	every tool in ["delete_repo", "drop_table", "repo_delete", "destroy_cluster", "exec_command", "shell", "transfer_funds"] {
		d := airlock.decision with input as call("any-target", tool)
		d.outcome == "approval_required"
		d.approval.approver_groups == ["airlock-approvers"]
		d.approval.grant_duration == "15m"
	}
}

test_shipped_rules_allow_ordinary_tools if {
	every tool in ["get_issue", "list_files", "search", "create_issue"] {
		d := airlock.decision with input as call("any-target", tool)
		d.outcome == "allow"
		d.masking_profile == "default"
		d.record == true
	}
}

# --- mistyped rules fail closed --------------------------------------------

test_deny_list_that_is_not_a_list_denies_everything if {
	r := json.patch(rules, [{"op": "replace", "path": "/*/tools/deny", "value": "danger_*"}])
	d := airlock.decision with input as call("jira", "get_issue") with data.airlock.rules as r
	d.outcome == "deny"
	d.reason == `airlock rules for target "jira" are invalid: rules["*"].tools.deny is string, want a list`
}

test_required_groups_that_is_not_a_list_denies if {
	r := json.patch(rules, [{"op": "replace", "path": "/github/required_groups", "value": "eng"}])
	d := airlock.decision with input as mk("github", {"method": "ping"}, []) with data.airlock.rules as r
	d.outcome == "deny"
	contains(d.reason, `rules["github"].required_groups is string, want a list`)
}
