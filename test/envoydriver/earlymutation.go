package envoydriver

import (
	"fmt"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"
)

var typeEarlyHeaderMutation = "type.googleapis.com/" + string((&headermutationv3.HeaderMutation{}).ProtoReflect().Descriptor().FullName())

// earlyMutation is one compiled mutation of the
// envoy.http.early_header_mutation.header_mutation extension: a removal
// (mutation_rules.proto HeaderMutation.remove) or an append with its
// append_action (HeaderMutation.append).
type earlyMutation struct {
	remove string
	add    *headerOp
}

// compileEarlyMutations follows http_connection_manager.proto
// early_header_mutation_extensions: "When configured the extensions will be
// called before any routing, tracing, or any filter processing. Each
// extension will be applied in the order they are configured."
func compileEarlyMutations(exts []*corev3.TypedExtensionConfig) ([]earlyMutation, error) {
	var out []earlyMutation
	for i, ext := range exts {
		where := fmt.Sprintf("early_header_mutation_extensions[%d] %q", i, ext.GetName())
		if ext.GetTypedConfig().GetTypeUrl() != typeEarlyHeaderMutation {
			return nil, fmt.Errorf("%s: type %q is not supported (only %s)", where, ext.GetTypedConfig().GetTypeUrl(), typeEarlyHeaderMutation)
		}
		m := &headermutationv3.HeaderMutation{}
		if err := ext.GetTypedConfig().UnmarshalTo(m); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if err := m.ValidateAll(); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		for j, mu := range m.GetMutations() {
			switch {
			case mu.GetRemove() != "":
				out = append(out, earlyMutation{remove: strings.ToLower(mu.GetRemove())})
			case mu.GetAppend() != nil:
				ops, err := compileRouteHeaderOptions([]*corev3.HeaderValueOption{mu.GetAppend()}, "append")
				if err != nil {
					return nil, fmt.Errorf("%s mutations[%d]: %w", where, j, err)
				}
				out = append(out, earlyMutation{add: &ops[0]})
			default:
				return nil, fmt.Errorf("%s mutations[%d]: only remove and append are supported", where, j)
			}
		}
	}
	return out, nil
}

// applyEarlyMutations mutates the request headers before the route is
// chosen; an append evaluates like a route's header option
// (HeaderMutations with a HeaderValueOption).
func applyEarlyMutations(ms []earlyMutation, h *headerMap) {
	for _, m := range ms {
		if m.add == nil {
			h.remove(m.remove)
			continue
		}
		applyHeaderParser(h, []headerOp{*m.add}, nil)
	}
}
