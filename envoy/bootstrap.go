package envoy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	"github.com/goccy/go-yaml"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	// Registers every Envoy type, so protojson can resolve each typed_config.
	_ "github.com/envoyproxy/go-control-plane/pkg/wellknown"
)

// Node identifies an Envoy to the control plane.
type Node struct {
	ID      string
	Cluster string
}

// AdminAddress keeps Envoy's admin interface on loopback: it can change
// and dump everything.
const AdminAddress = "127.0.0.1:9901"

// StaticBootstrap is a complete Envoy bootstrap with airlock's listener,
// routes and clusters inline (no control plane needed).
func StaticBootstrap(r *Resources, node Node) (*bootstrapv3.Bootstrap, error) {
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: node.ID, Cluster: node.Cluster},
		Admin: admin(),
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{
			Listeners: []*listenerv3.Listener{r.Listener},
			Clusters:  append([]*clusterv3.Cluster(nil), r.Clusters...),
		},
	}
	if err := ValidateDeep(b); err != nil {
		return nil, fmt.Errorf("bootstrap does not validate: %w", err)
	}
	return b, nil
}

// ADSOptions shape the ADS bootstrap.
type ADSOptions struct {
	// SotW selects state-of-the-world ADS (api_type GRPC) instead of the
	// default incremental ADS (DELTA_GRPC). With SotW every grant change
	// resends every grant scope; see docs/xds.md.
	SotW bool
}

// ADSBootstrap is the small bootstrap that points Envoy at airlock's ADS
// server at xdsAddress (host:port): node identity, admin on loopback, the
// ADS cluster, and LDS/CDS over ADS. Everything else arrives over ADS.
func ADSBootstrap(node Node, xdsAddress string, opts ADSOptions) (*bootstrapv3.Bootstrap, error) {
	if node.ID == "" || node.Cluster == "" {
		return nil, errors.New("ADS bootstrap: node id and node cluster must both be set")
	}
	if _, _, err := net.SplitHostPort(xdsAddress); err != nil {
		return nil, fmt.Errorf("ADS bootstrap: xds address %q must be host:port: %w", xdsAddress, err)
	}
	xds, err := cluster(ClusterXDS, "http://"+xdsAddress, true)
	if err != nil {
		return nil, fmt.Errorf("ADS bootstrap: xds address %q: %w", xdsAddress, err)
	}
	// One ADS stream (and a reconnect) is all it carries: Envoy's default
	// sizes, made explicit so remaining_rq is exported like the others'.
	xds.CircuitBreakers = circuitBreakers(envoyDefaultBreaker)
	// Notice a dead control plane (or a silently dropped connection) and reconnect.
	xds.TypedExtensionProtocolOptions[httpProtocolOptions] = mustAny(http2Options(&corev3.KeepaliveSettings{
		Interval: durationpb.New(30 * time.Second), Timeout: durationpb.New(5 * time.Second),
	}))
	api := corev3.ApiConfigSource_DELTA_GRPC
	if opts.SotW {
		api = corev3.ApiConfigSource_GRPC
	}
	b := &bootstrapv3.Bootstrap{
		Node:  &corev3.Node{Id: node.ID, Cluster: node.Cluster},
		Admin: admin(),
		DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{
			AdsConfig: &corev3.ApiConfigSource{
				ApiType:             api,
				TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{{
					TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterXDS}},
				}},
				SetNodeOnFirstMessageOnly: true,
			},
			LdsConfig: adsSource(),
			CdsConfig: adsSource(),
		},
		StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{xds}},
	}
	if err := ValidateDeep(b); err != nil {
		return nil, fmt.Errorf("bootstrap does not validate: %w", err)
	}
	return b, nil
}

// adsSource says a resource arrives over ADS.
func adsSource() *corev3.ConfigSource {
	return &corev3.ConfigSource{
		ConfigSourceSpecifier: &corev3.ConfigSource_Ads{Ads: &corev3.AggregatedConfigSource{}},
		ResourceApiVersion:    corev3.ApiVersion_V3,
	}
}

func admin() *bootstrapv3.Admin {
	return &bootstrapv3.Admin{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: "127.0.0.1", PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 9901},
	}}}}
}

// YAML renders a message as Envoy reads it (proto JSON field names, as YAML),
// with stable field order so the output can be diffed and golden-tested.
func YAML(m proto.Message) ([]byte, error) {
	j, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
	if err != nil {
		return nil, err
	}
	// protojson output is deliberately unstable in whitespace; re-encode through
	// a map to get a canonical form, then to YAML with sorted keys.
	var v any
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return yaml.MarshalWithOptions(numbers(v), yaml.Indent(2), yaml.IndentSequence(true))
}

// numbers turns json.Number into int64 (or float64) so YAML prints 9901,
// not 9901.0 or "9901".
func numbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// ParseBootstrap reads a YAML or JSON bootstrap as Envoy would, and validates it deeply.
func ParseBootstrap(src []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(src)
	if err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	b := &bootstrapv3.Bootstrap{}
	if err := protojson.Unmarshal(j, b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if err := ValidateDeep(b); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	return b, nil
}
