package policy

import (
	"bytes"
	"encoding/json"
	"reflect"
)

// CoveringGrants returns the grants whose argument constraint the call's
// arguments meet: a grant without Arguments (or ArgumentsHash) covers any
// call; one with ArgumentsHash covers only a call whose arguments hash to
// it; one with Arguments alone only a call whose arguments equal them as JSON values
// (key order, spacing and number spelling do not matter: 1 equals 1.0;
// absent arguments equal {}).
// The policy sees only these, so a decision never depends on the call's
// arguments unless the policy itself reads them. grants is not modified.
func CoveringGrants(grants []GrantInput, args json.RawMessage) []GrantInput {
	all := true
	for i := range grants {
		if len(grants[i].Arguments) > 0 || grants[i].ArgumentsHash != "" {
			all = false
			break
		}
	}
	if all {
		return grants
	}
	out := make([]GrantInput, 0, len(grants))
	// A tool call without arguments has the arguments {} (grants for such
	// calls are issued with {}).
	var call any = map[string]any{}
	callOK := true
	if len(bytes.TrimSpace(args)) > 0 {
		callOK = jsonValue(args, &call)
	}
	var callHash string
	hashed := false
	for _, g := range grants {
		if g.ArgumentsHash != "" {
			// The store's grants: compared by the hash of the canonical
			// form, which is equality as JSON values too.
			if !hashed {
				callHash, _ = ArgumentsHash(args) // "" for arguments that do not parse: no match
				hashed = true
			}
			if callHash != "" && callHash == g.ArgumentsHash {
				out = append(out, g)
			}
			continue
		}
		if len(g.Arguments) == 0 {
			out = append(out, g)
			continue
		}
		var want any
		if callOK && jsonValue(g.Arguments, &want) && reflect.DeepEqual(want, call) {
			out = append(out, g)
		}
	}
	return out
}

// jsonValue decodes raw with numbers as exact values (float64 would make
// 9007199254740993 equal 9007199254740992).
func jsonValue(raw json.RawMessage, v *any) bool {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	if d.Decode(v) != nil {
		return false
	}
	*v = normalizeNumbers(*v)
	return true
}

// normalizeNumbers rewrites json.Number so 1, 1.0 and 1e0 compare equal.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil && f == float64(int64(f)) && f < 1<<53 && f > -(1<<53) {
			return int64(f)
		}
		return x.String()
	}
	return v
}
