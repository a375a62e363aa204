package envoy

import (
	mutationv3 "github.com/envoyproxy/go-control-plane/envoy/config/common/mutation_rules/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	headermutationv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/http/early_header_mutation/header_mutation/v3"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// EarlyHeaderMutation is the extension that forces wire.HeaderGrant.
const EarlyHeaderMutation = "envoy.http.early_header_mutation.header_mutation"

// earlyHeaderMutations run before routing on the ADS listener. A client
// can never choose a grant: whatever it sent, every request is routed in
// the base scope (wire.HeaderGrant = wire.NoGrant) until ext_authz says
// otherwise.
func earlyHeaderMutations() []*corev3.TypedExtensionConfig {
	return []*corev3.TypedExtensionConfig{{
		Name: EarlyHeaderMutation,
		TypedConfig: mustAny(&headermutationv3.HeaderMutation{Mutations: []*mutationv3.HeaderMutation{{
			Action: &mutationv3.HeaderMutation_Append{Append: &corev3.HeaderValueOption{
				Header:       &corev3.HeaderValue{Key: wire.HeaderGrant, Value: wire.NoGrant},
				AppendAction: corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD,
			}},
		}}}),
	}}
}
