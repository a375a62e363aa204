package envoydriver

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
)

// headerOp is one HeaderValueOption from route configuration, resolved to
// its append action.
type headerOp struct {
	key, value string
	action     corev3.HeaderValueOption_HeaderAppendAction
	keepEmpty  bool
}

// headerOps holds the request/response header mutations of one route
// configuration level (route, virtual host or route configuration).
type headerOps struct {
	reqAdd, respAdd       []headerOp
	reqRemove, respRemove []string
}

func compileHeaderOps(reqAdd []*corev3.HeaderValueOption, reqRemove []string, respAdd []*corev3.HeaderValueOption, respRemove []string) (headerOps, error) {
	var ops headerOps
	var err error
	if ops.reqAdd, err = compileRouteHeaderOptions(reqAdd, "request_headers_to_add"); err != nil {
		return ops, err
	}
	if ops.respAdd, err = compileRouteHeaderOptions(respAdd, "response_headers_to_add"); err != nil {
		return ops, err
	}
	for _, field := range []struct {
		name string
		keys []string
		dst  *[]string
	}{{"request_headers_to_remove", reqRemove, &ops.reqRemove}, {"response_headers_to_remove", respRemove, &ops.respRemove}} {
		for _, k := range field.keys {
			k = strings.ToLower(k)
			if !isRemovableHeader(k) {
				return ops, fmt.Errorf("%s: %q may not be removed", field.name, k)
			}
			*field.dst = append(*field.dst, k)
		}
	}
	return ops, nil
}

// compileRouteHeaderOptions resolves HeaderValueOptions in route
// configuration, where base.proto HeaderValueOption.append "If true
// (default), the value is appended", i.e. APPEND_IF_EXISTS_OR_ADD.
func compileRouteHeaderOptions(opts []*corev3.HeaderValueOption, field string) ([]headerOp, error) {
	out := make([]headerOp, 0, len(opts))
	for _, o := range opts {
		key := strings.ToLower(o.GetHeader().GetKey())
		value := o.GetHeader().GetValue()
		if o.GetHeader().GetRawValue() != nil {
			value = string(o.GetHeader().GetRawValue())
		}
		if strings.HasPrefix(key, ":") || key == "host" {
			return nil, fmt.Errorf("%s: %q may not be modified", field, key)
		}
		if strings.Contains(value, "%") {
			return nil, fmt.Errorf("%s: %q uses substitution formatting, which is not supported", field, key)
		}
		action := o.GetAppendAction()
		if o.GetAppend() != nil {
			action = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
			if o.GetAppend().GetValue() {
				action = corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD
			}
		}
		out = append(out, headerOp{key: key, value: value, action: action, keepEmpty: o.GetKeepEmptyValue()})
	}
	return out, nil
}

// applyHeaderParser follows Router::HeaderParser::evaluateHeaders: removals
// first, then additions; empty values are dropped unless keep_empty_value;
// APPEND_IF_EXISTS_OR_ADD adds another entry.
func applyHeaderParser(h *headerMap, add []headerOp, remove []string) {
	for _, k := range remove {
		h.remove(k)
	}
	for _, op := range add {
		if op.value == "" && !op.keepEmpty {
			continue
		}
		applyAppendAction(h, op.key, op.value, op.action)
	}
}

func applyAppendAction(h *headerMap, key, value string, action corev3.HeaderValueOption_HeaderAppendAction) {
	switch action {
	case corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD:
		h.add(key, value)
	case corev3.HeaderValueOption_ADD_IF_ABSENT:
		if !h.has(key) {
			h.add(key, value)
		}
	case corev3.HeaderValueOption_OVERWRITE_IF_EXISTS:
		if h.has(key) {
			h.set(key, value)
		}
	default:
		h.set(key, value)
	}
}

// mutationChecker is a compiled mutation_rules.proto HeaderMutationRules,
// following source/extensions/filters/common/mutation_rules/mutation_rules.cc
// Checker.
type mutationChecker struct {
	allowRouting, allowEnvoy, disallowSystem, disallowAll, isError bool
	allowRe, disallowRe                                            *regexp.Regexp
}

type checkOp int

const (
	opSet checkOp = iota
	opAppend
	opRemove
)

type checkResult int

const (
	checkOK checkResult = iota
	checkIgnore
	checkFail
)

func compileMutationRules(r *mutationv3.HeaderMutationRules) (*mutationChecker, error) {
	c := &mutationChecker{
		allowRouting:   r.GetAllowAllRouting().GetValue(),
		allowEnvoy:     r.GetAllowEnvoy().GetValue(),
		disallowSystem: r.GetDisallowSystem().GetValue(),
		disallowAll:    r.GetDisallowAll().GetValue(),
		isError:        r.GetDisallowIsError().GetValue(),
	}
	var err error
	if r.GetAllowExpression() != nil {
		if c.allowRe, err = compileRegex(r.GetAllowExpression()); err != nil {
			return nil, fmt.Errorf("allow_expression: %w", err)
		}
	}
	if r.GetDisallowExpression() != nil {
		if c.disallowRe, err = compileRegex(r.GetDisallowExpression()); err != nil {
			return nil, fmt.Errorf("disallow_expression: %w", err)
		}
	}
	return c, nil
}

// check follows Checker::check: allowed and (for set/append) a valid value
// is OK; otherwise disallow_is_error decides between FAIL and IGNORE.
func (c *mutationChecker) check(op checkOp, name, value string) checkResult {
	if c.allowed(op, name) && (op == opRemove || validMutationValue(name, value)) {
		return checkOK
	}
	if c.isError {
		return checkFail
	}
	return checkIgnore
}

// allowed follows Checker::isAllowed. mutation_rules.proto: by default
// "host", ":authority", ":scheme", ":method" (allow_all_routing) and
// "x-envoy*" (allow_envoy) may not be changed; ":"-headers and host can never
// be removed and ":"-headers never appended.
func (c *mutationChecker) allowed(op checkOp, name string) bool {
	if op == opRemove && !isRemovableHeader(name) {
		return false
	}
	if c.disallowRe != nil && c.disallowRe.MatchString(name) {
		return false
	}
	if c.allowRe != nil && c.allowRe.MatchString(name) {
		return true
	}
	if c.disallowAll {
		return false
	}
	if !c.allowRouting {
		switch name {
		case "host", ":authority", ":method", ":scheme":
			return false
		}
	}
	if strings.HasPrefix(name, ":") && (op == opAppend || c.disallowSystem) {
		return false
	}
	if !c.allowEnvoy && strings.HasPrefix(name, "x-envoy") {
		return false
	}
	return true
}

// validMutationValue follows Checker::isValidValue.
func validMutationValue(name, value string) bool {
	if !strings.HasPrefix(name, ":") && !validHeaderValue(value) {
		return false
	}
	switch name {
	case "host", ":authority":
		return value != "" && !strings.ContainsAny(value, " \t/?#@")
	case ":scheme":
		return value == "http" || value == "https"
	case ":status":
		n, err := strconv.Atoi(value)
		return err == nil && n >= 200
	}
	return true
}
