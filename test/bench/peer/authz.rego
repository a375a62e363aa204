# METADATA
# title: airlock-equivalent ext_authz policy for opa-envoy-plugin
# description: >-
#   The benchmark peer (test/bench/authzload). opa-envoy-plugin evaluates
#   data.envoy.authz.response for each Envoy CheckRequest; this policy does
#   what airlock's Check does, in Rego: verify the bearer token against the
#   issuer's JWKS (signature, iss, aud = the target's resource, exp/nbf),
#   require the target's scopes, read the MCP JSON-RPC call from the
#   plugin's input.parsed_body, ask airlock's own decision policy
#   (policies/airlock/decision.rego with policies/data.yaml) and answer
#   allow (upstream credential in place of the agent's token, identity
#   headers, dynamic metadata) or a denial shaped like airlock's.
#   data.peer (issuer, JWKS, targets) is written by the driver.
package envoy.authz

http_request := input.attributes.request.http

headers := http_request.headers

target_name := object.get(input, ["attributes", "contextExtensions", "airlock_target"], "")

target := data.peer.targets[target_name]

decision_id := uuid.rfc4122(object.get(http_request, "id", ""))

# ---------------------------------------------------------------------------
# Who is calling.
# ---------------------------------------------------------------------------

bearer := t if {
	v := headers.authorization
	lower(substring(v, 0, 7)) == "bearer "
	t := trim_space(substring(v, 7, -1))
	t != ""
}

verified := io.jwt.decode_verify(bearer, {
	"cert": data.peer.issuer.jwks,
	"iss": data.peer.issuer.url,
	"aud": target.resource,
})

claims := verified[2] if verified[0]

token_scopes := claims.scp if is_array(claims.scp)

token_scopes := split(claims.scp, " ") if is_string(claims.scp)

token_scopes := split(claims.scope, " ") if {
	not claims.scp
	is_string(claims.scope)
}

scopes := s if {
	s := token_scopes
} else := []

missing_scopes := [s |
	some s in target.scopes_required
	not s in scopes
]

audience := claims.aud if {
	is_array(claims.aud)
} else := [claims.aud]

principal := {
	"issuer": claims.iss,
	"subject": claims.sub,
	"user": object.get(claims, "uid", ""),
	"client_id": object.get(claims, "cid", ""),
	"scopes": scopes,
	"groups": object.get(claims, "groups", []),
	"audience": audience,
	"expiry": time.format(claims.exp * 1000000000),
	"token_id": object.get(claims, "jti", ""),
	"claims": claims,
}

# ---------------------------------------------------------------------------
# What it asks for: one JSON-RPC message in a POST with a JSON body.
# ---------------------------------------------------------------------------

body := input.parsed_body

mcp_call if {
	http_request.method == "POST"
	startswith(object.get(headers, "content-type", ""), "application/json")
	is_object(body)
	body.jsonrpc == "2.0"
	is_string(body.method)
}

params := p if {
	p := body.params
	is_object(p)
} else := {}

kind := "request" if {
	"id" in object.keys(body)
} else := "notification"

param_string(name) := s if {
	s := params[name]
	is_string(s)
} else := ""

tool := param_string("name") if {
	body.method == "tools/call"
} else := ""

prompt := param_string("name") if {
	body.method == "prompts/get"
} else := ""

mcp := {
	"method": body.method,
	"kind": kind,
	"id": object.get(body, "id", null),
	"tool": tool,
	"prompt": prompt,
	"uri": param_string("uri"),
	"arguments": object.get(params, "arguments", null),
	"protocol_version": object.get(headers, "mcp-protocol-version", ""),
	"session_id": object.get(headers, "mcp-session-id", ""),
	"batch": false,
}

# Headers policy may see: no credentials, no pseudo-headers.
policy_headers := {k: v |
	some k, v in headers
	not startswith(k, ":")
	not k in {"authorization", "cookie", "proxy-authorization"}
}

policy_input := {
	"principal": principal,
	"target": {"name": target_name, "resource": target.resource, "scopes_required": target.scopes_required},
	"mcp": mcp,
	"request": {"method": http_request.method, "path": http_request.path, "host": http_request.host, "headers": policy_headers},
	"grants": [],
	"time": {"now": time.format(time.now_ns()), "unix_ns": time.now_ns()},
}

decision := d if {
	d := data.airlock.decision with input as policy_input
}

# ---------------------------------------------------------------------------
# The answer, in the plugin's result format.
# ---------------------------------------------------------------------------

default response := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json"},
	"body": "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32013,\"message\":\"denied: the gateway could not evaluate its policy\"}}",
}

response := not_found if {
	not target
} else := unauthenticated("", "no bearer token in the Authorization header") if {
	not bearer
} else := unauthenticated("invalid_token", "the token is not valid for this target") if {
	not claims
} else := insufficient_scope if {
	count(missing_scopes) > 0
} else := invalid_request if {
	not mcp_call
} else := allow if {
	decision.outcome == "allow"
} else := denied(-32013, decision.reason) if {
	# airlock refuses a call that needs approval without the reason
	# approvers need (the shipped rules require one); the benchmark's
	# calls never carry one.
	decision.outcome == "approval_required"
	decision.approval.reason_required
} else := denied(-32014, decision.reason) if {
	decision.outcome == "approval_required"
} else := denied(-32013, decision.reason)

allow := {
	"allowed": true,
	"headers": {
		target.credential_header: target.credential,
		"x-airlock-principal": claims.sub,
		"x-airlock-client-id": object.get(claims, "cid", ""),
		"x-airlock-target": target_name,
		"x-airlock-decision-id": decision_id,
	},
	"request_headers_to_remove": [k |
		some k, _ in headers
		startswith(k, "x-airlock-")
	],
	"dynamic_metadata": {
		"decision_id": decision_id,
		"target": target_name,
		"principal": claims.sub,
		"client_id": object.get(claims, "cid", ""),
		"issuer": claims.iss,
		"masking_profile": decision.masking_profile,
		"record": decision.record,
		"protocol": mcp.protocol_version,
		"session_id": mcp.session_id,
		"method": mcp.method,
		"tool": mcp.tool,
	},
}

rpc_error(id, code, message) := json.marshal({
	"jsonrpc": "2.0",
	"id": id,
	"error": {"code": code, "message": message, "data": {"decision_id": decision_id}},
})

denied(code, reason) := {
	"allowed": false,
	"http_status": 403,
	"headers": {"content-type": "application/json", "x-airlock-decision-id": decision_id},
	"body": rpc_error(mcp.id, code, sprintf("denied: %s", [reason])),
}

challenge(ps) := concat(", ", array.concat(ps, [sprintf("resource_metadata=%q", [target.metadata_url])]))

unauthenticated(err, reason) := {
	"allowed": false,
	"http_status": 401,
	"headers": {
		"content-type": "application/json",
		"www-authenticate": sprintf("Bearer %s", [challenge(error_params(err, reason))]),
		"x-airlock-decision-id": decision_id,
	},
	"body": rpc_error(null, -32011, sprintf("unauthorized: %s", [reason])),
}

error_params(err, _) := [] if err == ""

error_params(err, reason) := [sprintf("error=%q", [err]), sprintf("error_description=%q", [reason])] if err != ""

insufficient_scope := {
	"allowed": false,
	"http_status": 403,
	"headers": {
		"content-type": "application/json",
		"www-authenticate": sprintf("Bearer %s", [challenge([
			"error=\"insufficient_scope\"",
			sprintf("scope=%q", [concat(" ", target.scopes_required)]),
		])]),
		"x-airlock-decision-id": decision_id,
	},
	"body": rpc_error(null, -32013, sprintf("forbidden: the token lacks scope %s", [concat(", ", missing_scopes)])),
}

invalid_request := {
	"allowed": false,
	"http_status": 400,
	"headers": {"content-type": "application/json", "x-airlock-decision-id": decision_id},
	"body": rpc_error(null, -32600, "invalid request: expected one JSON-RPC 2.0 message in a POST with a JSON body"),
}

not_found := {
	"allowed": false,
	"http_status": 404,
	"headers": {"x-airlock-decision-id": decision_id},
	"body": "",
}
