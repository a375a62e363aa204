package rego

import (
	"errors"
	"fmt"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// decodeDecision converts the value of the decision query strictly: the
// outcome must be known, every field must have its type, unknown fields
// are errors (they are usually typos), and an approval_required decision
// must say who approves.
func decodeDecision(v ast.Value) (policy.Decision, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return policy.Decision{}, fmt.Errorf("decision is %s, want an object", ast.ValueName(v))
	}
	d := policy.Decision{Record: true}
	var approval ast.Object
	var errs []error
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			errs = append(errs, fmt.Errorf("decision has a non-string key %s", k))
			return nil
		}
		var err error
		switch string(key) {
		case "outcome":
			d.Outcome, err = stringField("outcome", val)
		case "reason":
			d.Reason, err = stringField("reason", val)
		case "grant":
			d.Grant, err = stringField("grant", val)
		case "masking_profile":
			d.MaskingProfile, err = stringField("masking_profile", val)
		case "record":
			d.Record, err = boolField("record", val)
		case "approval":
			if approval, ok = val.Value.(ast.Object); !ok {
				err = fmt.Errorf("decision.approval is %s, want an object", ast.ValueName(val.Value))
			}
		default:
			err = fmt.Errorf("decision has unknown field %q", string(key))
		}
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return policy.Decision{}, errors.Join(errs...)
	}
	switch d.Outcome {
	case policy.OutcomeAllow:
	case policy.OutcomeDeny:
		if d.Reason == "" {
			d.Reason = "denied by policy"
		}
	case policy.OutcomeApprovalRequired:
		if approval == nil {
			return policy.Decision{}, errors.New("decision is approval_required but has no approval object")
		}
		a, err := decodeApproval(approval)
		if err != nil {
			return policy.Decision{}, err
		}
		d.Approval = &a
		if d.Reason == "" {
			d.Reason = "approval required by policy"
		}
	case "":
		return policy.Decision{}, errors.New("decision has no outcome")
	default:
		return policy.Decision{}, fmt.Errorf("decision has unknown outcome %q (want allow, deny or approval_required)", d.Outcome)
	}
	if d.Grant != "" && d.Outcome != policy.OutcomeAllow {
		return policy.Decision{}, fmt.Errorf("decision names grant %q but its outcome is %s", d.Grant, d.Outcome)
	}
	if d.Reason == "" {
		d.Reason = "allowed by policy"
	}
	return d, nil
}

func decodeApproval(obj ast.Object) (policy.Approval, error) {
	a := policy.Approval{Threshold: 1}
	var errs []error
	durationSet := false
	err := obj.Iter(func(k, val *ast.Term) error {
		key, ok := k.Value.(ast.String)
		if !ok {
			errs = append(errs, fmt.Errorf("decision.approval has a non-string key %s", k))
			return nil
		}
		var err error
		switch string(key) {
		case "approver_groups":
			a.ApproverGroups, err = stringsField("approval.approver_groups", val)
		case "break_glass_groups":
			a.BreakGlassGroups, err = stringsField("approval.break_glass_groups", val)
		case "threshold":
			a.Threshold, err = intField("approval.threshold", val)
			if err == nil && a.Threshold < 1 {
				err = fmt.Errorf("decision.approval.threshold is %d, want at least 1", a.Threshold)
			}
		case "grant_duration":
			var s string
			if s, err = stringField("approval.grant_duration", val); err == nil {
				a.GrantDuration, err = time.ParseDuration(s)
				if err != nil {
					err = fmt.Errorf("decision.approval.grant_duration %q: want a Go duration such as \"15m\" or \"0s\"", s)
				} else if a.GrantDuration < 0 {
					err = fmt.Errorf("decision.approval.grant_duration %q is negative", s)
				}
				durationSet = true
			}
		case "single_use":
			a.SingleUse, err = boolField("approval.single_use", val)
		case "reason_required":
			a.ReasonRequired, err = boolField("approval.reason_required", val)
		case "pin_arguments":
			// Absent in policies written before scopes: their time-bound
			// grants covered any arguments, and still do.
			a.PinArguments, err = boolField("approval.pin_arguments", val)
		default:
			err = fmt.Errorf("decision.approval has unknown field %q", string(key))
		}
		if err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return policy.Approval{}, errors.Join(errs...)
	}
	if len(a.ApproverGroups) == 0 {
		return policy.Approval{}, errors.New("decision.approval.approver_groups is empty: nobody could approve")
	}
	if !durationSet && !a.SingleUse {
		return policy.Approval{}, errors.New("decision.approval has neither grant_duration nor single_use")
	}
	if a.GrantDuration == 0 {
		a.SingleUse = true
	}
	return a, nil
}

func stringField(name string, t *ast.Term) (string, error) {
	s, ok := t.Value.(ast.String)
	if !ok {
		return "", fmt.Errorf("decision.%s is %s, want a string", name, ast.ValueName(t.Value))
	}
	return string(s), nil
}

func boolField(name string, t *ast.Term) (bool, error) {
	b, ok := t.Value.(ast.Boolean)
	if !ok {
		return false, fmt.Errorf("decision.%s is %s, want a boolean", name, ast.ValueName(t.Value))
	}
	return bool(b), nil
}

func intField(name string, t *ast.Term) (int, error) {
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, fmt.Errorf("decision.%s is %s, want an integer", name, ast.ValueName(t.Value))
	}
	i, ok := n.Int()
	if !ok {
		return 0, fmt.Errorf("decision.%s is %s, want an integer", name, n)
	}
	return i, nil
}

// stringsField reads an array (or a set, in sorted order) of strings.
func stringsField(name string, t *ast.Term) ([]string, error) {
	var arr *ast.Array
	switch v := t.Value.(type) {
	case *ast.Array:
		arr = v
	case ast.Set:
		arr = v.Sorted()
	default:
		return nil, fmt.Errorf("decision.%s is %s, want an array of strings", name, ast.ValueName(t.Value))
	}
	out := make([]string, 0, arr.Len())
	for i := range arr.Len() {
		s, ok := arr.Elem(i).Value.(ast.String)
		if !ok {
			return nil, fmt.Errorf("decision.%s[%d] is %s, want a string", name, i, ast.ValueName(arr.Elem(i).Value))
		}
		out = append(out, string(s))
	}
	return out, nil
}
