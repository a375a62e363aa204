package envoydriver

import (
	"errors"
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// headersToProto follows MutationUtils::headersToProto: lower-cased keys,
// the value in raw_value (runtime send_header_raw_value, on by default),
// filtered by forward_rules — "If not set, all headers are forwarded".
func (p *extProc) headersToProto(h *headerMap) *corev3.HeaderMap {
	out := &corev3.HeaderMap{Headers: make([]*corev3.HeaderValue, 0, len(h.entries))}
	for _, e := range h.entries {
		if !headerCanBeForwarded(e.key, p.cfg.allowed, p.cfg.disallowed) {
			continue
		}
		out.Headers = append(out.Headers, &corev3.HeaderValue{Key: e.key, RawValue: []byte(e.value)})
	}
	return out
}

// headerCanBeForwarded follows MutationUtils::headerCanBeForwarded.
func headerCanBeForwarded(key string, allowed, disallowed listMatcher) bool {
	if disallowed != nil && disallowed.match(key) {
		return false
	}
	return allowed == nil || allowed.match(key)
}

// applyHeaderMutation follows MutationUtils::applyHeaderMutations: removals
// then sets, each checked against mutation_rules (disallowed ones are
// ignored, or fail with disallow_is_error); the value is taken from
// raw_value; append (default false here) adds another entry, otherwise the
// header is set; content-length is skipped when the body mode removes it;
// ":method" may change with CONTINUE_AND_REPLACE. An error means the
// response is rejected.
func (p *extProc) applyHeaderMutation(m *procsvc.HeaderMutation, h *headerMap, replacing, removeCL bool) error {
	for _, name := range m.GetRemoveHeaders() {
		if !validHeaderName(name) {
			return errors.New("invalid character in remove_headers mutation")
		}
		k := strings.ToLower(name)
		switch p.cfg.rules.check(opRemove, k, "") {
		case checkOK:
			h.remove(k)
		case checkFail:
			return fmt.Errorf("invalid attempt to remove %s", k)
		}
	}
	for _, sh := range m.GetSetHeaders() {
		hv := sh.GetHeader()
		if hv == nil {
			continue
		}
		k := strings.ToLower(hv.GetKey())
		if removeCL && k == "content-length" {
			continue
		}
		if hv.GetValue() != "" && len(hv.GetRawValue()) > 0 {
			return errors.New("only one of value or raw_value in the HeaderValue message should be set")
		}
		v := string(hv.GetRawValue())
		if !validHeaderName(k) || !validHeaderValue(v) {
			return errors.New("invalid character in set_headers mutation")
		}
		appendValue := sh.GetAppend().GetValue()
		op := opSet
		if appendValue && h.has(k) {
			op = opAppend
		}
		res := p.cfg.rules.check(op, k, v)
		if replacing && k == ":method" {
			res = checkOK
		}
		switch res {
		case checkOK:
			if appendValue {
				h.add(k, v)
			} else {
				h.set(k, v)
			}
		case checkFail:
			return fmt.Errorf("invalid attempt to modify %s", k)
		}
	}
	return nil
}

// applyBodyMutation follows MutationUtils::applyBodyMutations: body
// replaces the data, clear_body empties it, anything else leaves it.
func applyBodyMutation(bm *procsvc.BodyMutation, data []byte) []byte {
	switch m := bm.GetMutation().(type) {
	case *procsvc.BodyMutation_Body:
		return append([]byte(nil), m.Body...)
	case *procsvc.BodyMutation_ClearBody:
		if m.ClearBody {
			return nil
		}
	}
	return data
}

// clearRouteCache follows DecodingProcessorState::clearRouteCache: only a
// response with a header mutation may clear it; route_cache_action DEFAULT
// honours CommonResponse.clear_route_cache, CLEAR always clears, RETAIN
// never does.
func (p *extProc) clearRouteCache(c *procsvc.CommonResponse) {
	if c.GetHeaderMutation() == nil {
		return
	}
	switch p.cfg.routeCacheAction {
	case extprocv3.ExternalProcessor_CLEAR:
		p.s.clearRouteCache()
	case extprocv3.ExternalProcessor_DEFAULT:
		if c.GetClearRouteCache() {
			p.s.clearRouteCache()
		}
	}
}
