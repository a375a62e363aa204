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
		"pin_arguments": true,
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
		"resources/templates/list", "server/discover",
		"logging/setLevel", "notifications/initialized", "notifications/cancelled",
		"notifications/progress", "notifications/roots/list_changed", "notifications/tasks/status",
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

		# Issue 15: the shipped scope is this exact call, once (it was the
		# tool with any arguments for 15m).
		d.approval.single_use == true
		d.approval.grant_duration == "0s"
		d.approval.pin_arguments == true
	}
}

# --- approval scope -----------------------------------------------------

scope_rules := object.union(rules, {"*": {"approval": {
	"single_use": true,
	"overrides": {
		"exec*": {"single_use": false, "grant_duration": "30m"},
		"delete_tmp*": {"single_use": false, "grant_duration": "5m", "pin_arguments": false},
	},
}}})

scoped(target, tool) := d if {
	d := airlock.decision with input as call(target, tool) with data.airlock.rules as scope_rules
}

test_scope_default_is_call_once if {
	d := airlock.decision with input as call("jira", "delete_issue") with data.airlock.rules as {"*": {
		"tools": {"allow": ["*"], "require_approval": ["delete_*"]},
		"approval": {"approver_groups": ["approvers"]},
	}}
	d.outcome == "approval_required"
	d.approval.single_use == true
	d.approval.grant_duration == "0s"
	d.approval.pin_arguments == true
}

test_scope_override_pins_arguments_by_default if {
	d := scoped("jira", "exec_query")
	d.approval.single_use == false
	d.approval.grant_duration == "30m"
	d.approval.pin_arguments == true
}

test_scope_override_any_arguments_only_where_data_says if {
	d := scoped("jira", "delete_tmp_files")
	d.approval.single_use == false
	d.approval.grant_duration == "5m"
	d.approval.pin_arguments == false

	o := scoped("jira", "delete_issue")
	o.approval.single_use == true
	o.approval.pin_arguments == true
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

# --- names in any style ----------------------------------------------------

# named builds a tools/call (or, with msg, another message) carrying the
# name facts airlock computes in Go (internal/policy/names.go) for name.
named(tgt, msg, name, normalized, words, suspicious) := mk(
	tgt, object.union(
		object.union({"tool": name}, msg),
		{"name": name, "name_normalized": normalized, "name_words": words, "name_suspicious": suspicious},
	),
	[],
)

# Rules without approval globs, so that only the destructive-verb rule holds.
word_rules := json.patch(rules, [{"op": "replace", "path": "/*/tools/require_approval", "value": []}])

decide_words(inp) := d if {
	d := airlock.decision with input as inp with data.airlock.rules as word_rules
}

# Each style of a destructive name, with the facts the Go normaliser gives
# it (TestNameWords checks the same table on the Go side).
destructive_styles := [
	{"name": "delete_all", "normalized": "delete_all", "words": ["delete", "all"], "verb": "delete"},
	{"name": "DELETE_all", "normalized": "delete_all", "words": ["delete", "all"], "verb": "delete"},
	{"name": "deleteAll", "normalized": "deleteall", "words": ["delete", "all"], "verb": "delete"},
	{"name": "DeleteAll", "normalized": "deleteall", "words": ["delete", "all"], "verb": "delete"},
	{"name": "removeUser", "normalized": "removeuser", "words": ["remove", "user"], "verb": "remove"},
	{"name": "repoDelete", "normalized": "repodelete", "words": ["repo", "delete"], "verb": "delete"},
	{"name": "repo-delete", "normalized": "repo-delete", "words": ["repo", "delete"], "verb": "delete"},
	{"name": "repo.delete", "normalized": "repo.delete", "words": ["repo", "delete"], "verb": "delete"},
	{"name": "repo/delete", "normalized": "repo/delete", "words": ["repo", "delete"], "verb": "delete"},
	{"name": "repo:delete", "normalized": "repo:delete", "words": ["repo", "delete"], "verb": "delete"},
	{"name": "ＤＥＬＥＴＥ_all", "normalized": "delete_all", "words": ["delete", "all"], "verb": "delete"},
	{"name": "ｄelete", "normalized": "delete", "words": ["delete"], "verb": "delete"},
	{"name": "HTTPDelete", "normalized": "httpdelete", "words": ["http", "delete"], "verb": "delete"},
	{"name": "rm-rf", "normalized": "rm-rf", "words": ["rm", "rf"], "verb": "rm"},
	{"name": "dropTable", "normalized": "droptable", "words": ["drop", "table"], "verb": "drop"},
	{"name": "TRUNCATE.logs", "normalized": "truncate.logs", "words": ["truncate", "logs"], "verb": "truncate"},
	{"name": "runShellCommand", "normalized": "runshellcommand", "words": ["run", "shell", "command"], "verb": "run"},
	{"name": "execSQL", "normalized": "execsql", "words": ["exec", "sql"], "verb": "exec"},
	{"name": "sendPayment", "normalized": "sendpayment", "words": ["send", "payment"], "verb": "send payment"},
	{"name": "force_push", "normalized": "force_push", "words": ["force", "push"], "verb": "force"},
	{"name": "killProcess", "normalized": "killprocess", "words": ["kill", "process"], "verb": "kill"},
	{"name": "wire/transfer", "normalized": "wire/transfer", "words": ["wire", "transfer"], "verb": "transfer"},
	{"name": "revokeToken", "normalized": "revoketoken", "words": ["revoke", "token"], "verb": "revoke"},
	{"name": "factory_reset", "normalized": "factory_reset", "words": ["factory", "reset"], "verb": "reset"},
	{"name": "formatDisk", "normalized": "formatdisk", "words": ["format", "disk"], "verb": "format"},
]

test_destructive_word_in_any_style_needs_approval if {
	every st in destructive_styles {
		d := decide_words(named("jira", {}, st.name, st.normalized, st.words, ""))
		d.outcome == "approval_required"
		d.reason == sprintf(`tool %q on target "jira" requires approval (%q is in the default destructive verbs for tools (decision.rego default_destructive_verbs))`, [st.name, st.verb])
	}
}

# Words are matched exactly: "deleted" is not the verb "delete", "runs" is
# not "run". Names that only contain a verb inside a longer word are left to
# the require_approval globs (the shipped "delete*" holds deleted_items_count).
test_words_are_exact if {
	every st in [
		{"name": "deleted_items_count", "words": ["deleted", "items", "count"]},
		{"name": "list_runs", "words": ["list", "runs"]},
		{"name": "list_payments", "words": ["list", "payments"]},
		{"name": "send_email", "words": ["send", "email"]},
		{"name": "getFormatter", "words": ["get", "formatter"]},
		{"name": "get_issue", "words": ["get", "issue"]},
	] {
		d := decide_words(named("jira", {}, st.name, lower(st.name), st.words, ""))
		d.outcome == "allow"
	}
}

test_multi_word_entry_matches_words_in_a_row if {
	r := json.patch(word_rules, [{"op": "add", "path": "/*/tools/destructive_verbs", "value": ["send_payment", "wire transfer"]}])
	held(r, "sendPayment", ["send", "payment"])
	held(r, "send_payment_now", ["send", "payment", "now"])
	held(r, "WireTransfer", ["wire", "transfer"])
	not held(r, "send_money", ["send", "money"])
	not held(r, "payment_send", ["payment", "send"])
	not held(r, "transfer", ["transfer"])
	d := airlock.decision with input as named("jira", {}, "sendPayment", "sendpayment", ["send", "payment"], "") with data.airlock.rules as r
	d.reason == `tool "sendPayment" on target "jira" requires approval ("send payment" is in rules["*"].tools.destructive_verbs)`
}

held(r, name, words) if {
	d := airlock.decision with input as named("wiki", {}, name, lower(name), words, "") with data.airlock.rules as r
	d.outcome == "approval_required"
}

test_destructive_verbs_overridable_per_target if {
	r := json.patch(word_rules, [
		{"op": "add", "path": "/*/tools/destructive_verbs", "value": ["nuke"]},
		{"op": "add", "path": "/jira", "value": {"tools": {"destructive_verbs": []}}},
	])
	held(r, "nukeAll", ["nuke", "all"])
	not held(r, "delete_all", ["delete", "all"]) # the operator's list replaces the default
	d := airlock.decision with input as named("jira", {}, "nukeAll", "nukeall", ["nuke", "all"], "") with data.airlock.rules as r
	d.outcome == "allow" # rules["jira"] turns the word rule off for jira
}

test_destructive_verbs_not_a_list_denies if {
	r := json.patch(word_rules, [{"op": "add", "path": "/*/tools/destructive_verbs", "value": "delete"}])
	d := airlock.decision with input as call("jira", "get_issue") with data.airlock.rules as r
	d.outcome == "deny"
	d.reason == `airlock rules for target "jira" are invalid: rules["*"].tools.destructive_verbs is string, want a list`
}

test_destructive_word_covered_by_grant if {
	g := grant({"tool": "repoDelete"})
	inp := json.patch(named("jira", {}, "repoDelete", "repodelete", ["repo", "delete"], ""), [{"op": "replace", "path": "/grants", "value": [g]}])
	d := decide_words(inp)
	d.outcome == "allow"
	d.grant == "g1"
}

test_resources_have_no_default_destructive_verbs if {
	inp := named("jira", {"method": "resources/read", "tool": "", "uri": "file:///public/delete.md"}, "file:///public/delete.md", "file:///public/delete.md", ["file", "public", "delete", "md"], "")
	decide_words(inp).outcome == "allow"
	r := json.patch(word_rules, [{"op": "add", "path": "/*/resources/destructive_verbs", "value": ["delete"]}])
	d := airlock.decision with input as inp with data.airlock.rules as r
	d.outcome == "approval_required"
	d.reason == `resource "file:///public/delete.md" on target "jira" requires approval ("delete" is in rules["*"].resources.destructive_verbs)`
}

# Without airlock's name facts (another OPA host), an ASCII approximation
# splits the same styles.
test_words_without_name_facts if {
	every name in ["delete_all", "DELETE_all", "deleteAll", "DeleteAll", "removeUser", "repoDelete", "repo-delete", "repo.delete", "repo/delete", "repo:delete", "HTTPDelete"] {
		d := decide_words(call("jira", name))
		d.outcome == "approval_required"
	}
	decide_words(call("jira", "deleted_items_count")).outcome == "allow"
}

# --- glob patterns are case-insensitive on the normalised name ----------------

test_globs_match_normalised_name if {
	d := decide(named("jira", {}, "DELETE_Issue", "delete_issue", ["delete", "issue"], ""))
	d.outcome == "approval_required"
	d.reason == `tool "DELETE_Issue" on target "jira" requires approval (pattern "delete_*" in rules["*"].tools.require_approval)`
	x := decide(named("jira", {}, "ＤＡＮＧＥＲ_zone", "danger_zone", ["danger", "zone"], ""))
	x.outcome == "deny"
	x.reason == `tool "ＤＡＮＧＥＲ_zone" on target "jira" is denied by pattern "danger_*" in rules["*"].tools.deny`

	# Patterns are written in lower case: one with capitals matches only the
	# raw name as written.
	r := json.patch(rules, [{"op": "replace", "path": "/*/tools/deny", "value": ["Danger_*"]}])
	y := airlock.decision with input as named("jira", {}, "Danger_zone", "danger_zone", ["danger", "zone"], "") with data.airlock.rules as r
	y.outcome == "deny"
	z := airlock.decision with input as named("jira", {}, "DANGER_zone", "danger_zone", ["danger", "zone"], "") with data.airlock.rules as r
	z.outcome == "allow"
}

# Allow lists match the name as written: normalising never widens them.
test_allow_list_matches_raw_name if {
	decide(named("payments", {}, "get_balance", "get_balance", ["get", "balance"], "")).outcome == "allow"
	d := decide(named("payments", {}, "GET_balance", "get_balance", ["get", "balance"], ""))
	d.outcome == "deny"
	d.reason == `tool "GET_balance" on target "payments" matches no pattern in rules["payments"].tools.allow`
}

# --- names that cannot be trusted are denied ------------------------------------

test_suspicious_names_denied if {
	every st in [
		{"name": "del\u200bete_all", "why": "zero-width character U+200B"},
		{"name": "delete\u202e", "why": "bidi control U+202E"},
		{"name": "delete\u0000all", "why": "control character U+0000"},
		{"name": "d\u0435lete_all", "why": "mixed scripts Latin+Cyrillic"},
		{"name": "get\u00adissue", "why": "invisible character U+00AD"},
	] {
		d := decide(named("jira", {}, st.name, st.name, [], st.why))
		d.outcome == "deny"
		d.reason == sprintf(`tool %q on target "jira" is denied because of its name: %s`, [st.name, st.why])
	}
}

test_suspicious_prompt_and_resource_denied if {
	p := decide(named("jira", {"method": "prompts/get", "tool": "", "prompt": "summ\u200bary"}, "summ\u200bary", "summ\u200bary", [], "zero-width character U+200B"))
	p.outcome == "deny"
	contains(p.reason, `prompt "summ\u200bary"`)
	u := "file:///public/a%00b"
	r := decide(named("jira", {"method": "resources/read", "tool": "", "uri": u}, u, u, [], "control character U+0000 (percent-encoded)"))
	r.outcome == "deny"
	contains(r.reason, "control character U+0000 (percent-encoded)")
}

test_suspicious_without_name_facts if {
	every name in ["del\u200bete", "delete\u202e", "a\u0007b", "x\ufeff"] {
		d := decide(call("jira", name))
		d.outcome == "deny"
		contains(d.reason, "control, zero-width or bidi character")
	}
}

test_name_facts_for_another_name_denied if {
	inp := json.patch(named("jira", {}, "get_issue", "get_issue", ["get", "issue"], ""), [{"op": "replace", "path": "/mcp/tool", "value": "delete_all"}])
	d := decide(inp)
	d.outcome == "deny"
	d.reason == `tools/call on target "jira": the name facts in the input are for "get_issue", not "delete_all"`
}

# --- notifications ---------------------------------------------------------

test_unknown_notifications_denied if {
	every m in [
		"notifications/tools/list_changed", # server to client
		"notifications/message",
		"notifications/elicitation/complete",
		"notifications/x/run_tool",
		"notifications/",
	] {
		d := decide(mk("jira", {"method": m, "kind": "notification", "id": null}, []))
		d.outcome == "deny"
		d.reason == sprintf(`method %q is not allowed through airlock (target "jira")`, [m])
	}
}

# --- completion/complete follows the prompt or resource it names ---------------

completion(msg) := mk("jira", object.union({"method": "completion/complete", "tool": ""}, msg), [])

test_completion_of_allowed_prompt_and_resource if {
	p := decide(completion({"prompt": "summarize"}))
	p.outcome == "allow"
	p.reason == `prompt "summarize" allowed on target "jira"`
	r := decide(completion({"uri": "file:///public/{name}"}))
	r.outcome == "allow"
}

test_completion_of_denied_prompt_denied if {
	d := decide(completion({"prompt": "jailbreak_v2"}))
	d.outcome == "deny"
	d.reason == `prompt "jailbreak_v2" on target "jira" is denied by pattern "jailbreak*" in rules["*"].prompts.deny`
}

test_completion_of_unlisted_resource_denied if {
	d := decide(completion({"uri": "file:///etc/{file}"}))
	d.outcome == "deny"
	contains(d.reason, "matches no pattern in rules[\"*\"].resources.allow")
}

test_completion_of_approval_gated_resource_denied if {
	d := decide(completion({"uri": "db://reports/payroll-{year}"}))
	d.outcome == "deny"
	d.reason == `completion/complete for resource is denied: resource "db://reports/payroll-{year}" on target "jira" requires approval (pattern "db://reports/payroll*" in rules["*"].resources.require_approval)`

	# A grant covers reads, not completions.
	g := grant({"tool": "", "resource": "db://reports/payroll-{year}"})
	x := decide(mk("jira", {"method": "completion/complete", "tool": "", "uri": "db://reports/payroll-{year}"}, [g]))
	x.outcome == "deny"
}

test_completion_without_ref_denied if {
	d := decide(completion({}))
	d.outcome == "deny"
	d.reason == `completion/complete on target "jira" names no prompt or resource (params.ref)`
	b := decide(completion({"prompt": "summarize", "uri": "file:///public/x"}))
	b.outcome == "deny"
	b.reason == `completion/complete on target "jira" names both a prompt and a resource`
}

test_completion_with_suspicious_prompt_denied if {
	d := decide(named("jira", {"method": "completion/complete", "tool": "", "prompt": "summ\u200bary"}, "summ\u200bary", "summ\u200bary", [], "zero-width character U+200B"))
	d.outcome == "deny"
}

# --- the shipped data.yaml's list is the default ----------------------------------

test_shipped_destructive_verbs_equal_default if {
	data.airlock.rules["*"].tools.destructive_verbs == airlock.default_destructive_verbs.tools
	data.airlock.rules["*"].resources.destructive_verbs == airlock.default_destructive_verbs.resources
}
