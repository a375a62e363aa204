package check

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/wire"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
	securityv1beta1 "istio.io/api/security/v1beta1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

const (
	istioDir      = "../istio"
	istioMeshFile = "mesh-config.yaml"
)

// istioTypes: the Istio kinds deploy/istio holds, by apiVersion/kind.
var istioTypes = map[string]func() proto.Message{
	"security.istio.io/v1/AuthorizationPolicy":      func() proto.Message { return &securityv1beta1.AuthorizationPolicy{} },
	"security.istio.io/v1/PeerAuthentication":       func() proto.Message { return &securityv1beta1.PeerAuthentication{} },
	"networking.istio.io/v1alpha3/EnvoyFilter":      func() proto.Message { return &networkingv1alpha3.EnvoyFilter{} },
	"security.istio.io/v1beta1/AuthorizationPolicy": func() proto.Message { return &securityv1beta1.AuthorizationPolicy{} },
}

// istioObject is an Istio resource: Kubernetes metadata and its spec, the
// istio.io/api message.
type istioObject struct {
	object
	Spec proto.Message
}

// decodeIstio reads o the way Istio's API server validation does: the
// envelope strictly (apiVersion, kind, metadata, spec and nothing else),
// the spec with protojson into its istio.io/api type (unknown fields are
// errors).
func decodeIstio(o object) (istioObject, error) {
	mk, ok := istioTypes[o.APIVersion+"/"+o.Kind]
	if !ok {
		return istioObject{}, fmt.Errorf("%s: apiVersion %s kind %s is not a type this check knows", o, o.APIVersion, o.Kind)
	}
	var env struct {
		APIVersion string            `json:"apiVersion"`
		Kind       string            `json:"kind"`
		Metadata   metav1.ObjectMeta `json:"metadata"`
		Spec       json.RawMessage   `json:"spec"`
	}
	strict, err := kjson.UnmarshalStrict(o.JSON, &env, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil || len(strict) > 0 {
		return istioObject{}, fmt.Errorf("%s: %v %v", o, err, strict)
	}
	spec := mk()
	if err := protojson.Unmarshal(env.Spec, spec); err != nil {
		return istioObject{}, fmt.Errorf("%s: spec: %w", o, err)
	}
	return istioObject{object: o, Spec: spec}, nil
}

// loadMeshConfig reads mesh-config.yaml's meshConfig into istio.io/api's
// MeshConfig, strictly.
func loadMeshConfig(t *testing.T) *meshv1alpha1.MeshConfig {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(istioDir, istioMeshFile))
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(j, &top); err != nil {
		t.Fatal(err)
	}
	if len(top) != 1 || top["meshConfig"] == nil {
		t.Fatalf("%s: want exactly one key, meshConfig", istioMeshFile)
	}
	mc := &meshv1alpha1.MeshConfig{}
	if err := protojson.Unmarshal(top["meshConfig"], mc); err != nil {
		t.Fatalf("%s: meshConfig: %v", istioMeshFile, err)
	}
	return mc
}

func loadIstio(t *testing.T) []istioObject {
	t.Helper()
	var out []istioObject
	for _, o := range loadManifests(t, istioDir) {
		if strings.HasPrefix(filepath.Base(o.Source), istioMeshFile+"#") {
			continue // not a Kubernetes object: read by loadMeshConfig
		}
		io, err := decodeIstio(o)
		if err != nil {
			t.Error(err)
			continue
		}
		out = append(out, io)
	}
	return out
}

// TestIstio: the mesh config's provider is what airlock needs (timeout
// over the hold window, fail closed, the body), the CUSTOM policy names a
// provider that exists and covers exactly the targets' paths, the
// EnvoyFilter's patch validates as the Envoy type it carries and is the
// ext_proc filter airlock renders for its own Envoy, and only the
// gateway's identity reaches airlock's gRPC ports.
func TestIstio(t *testing.T) {
	mc := loadMeshConfig(t)
	cfg := chartConfig(t, "ci/istio-mesh-values.yaml") // airlock in the mesh
	providers := map[string]*meshv1alpha1.MeshConfig_ExtensionProvider{}
	for _, p := range mc.GetExtensionProviders() {
		providers[p.GetName()] = p
		az := p.GetEnvoyExtAuthzGrpc()
		if az == nil {
			continue
		}
		if d := az.GetTimeout().AsDuration(); d <= cfg.Grants.HoldWindow {
			t.Errorf("provider %s: timeout %s does not exceed grants.hold_window %s", p.GetName(), d, cfg.Grants.HoldWindow)
		}
		if az.GetFailOpen() {
			t.Errorf("provider %s: failOpen must be false", p.GetName())
		}
		body := az.GetIncludeRequestBodyInCheck()
		if body == nil || int(body.GetMaxRequestBytes()) != cfg.Limits.MaxRequestBytes || !body.GetPackAsBytes() {
			t.Errorf("provider %s: includeRequestBodyInCheck must send the body as bytes, up to limits.max_request_bytes (%d)", p.GetName(), cfg.Limits.MaxRequestBytes)
		}
		if int(az.GetPort()) != portOf(t, cfg.Listen.Authz) {
			t.Errorf("provider %s: port %d, want airlock's %s", p.GetName(), az.GetPort(), cfg.Listen.Authz)
		}
	}

	objs := loadIstio(t)
	var custom, extProc, allowOnly int
	for _, o := range objs {
		switch spec := o.Spec.(type) {
		case *securityv1beta1.AuthorizationPolicy:
			switch spec.GetAction() {
			case securityv1beta1.AuthorizationPolicy_CUSTOM:
				custom++
				checkCustomPolicy(t, o, spec, providers, cfg)
			case securityv1beta1.AuthorizationPolicy_ALLOW:
				allowOnly++
				checkGatewayOnly(t, o, spec, cfg)
			}
		case *networkingv1alpha3.EnvoyFilter:
			extProc += checkEnvoyFilter(t, o, spec, cfg)
		case *securityv1beta1.PeerAuthentication:
			if spec.GetMtls().GetMode() != securityv1beta1.PeerAuthentication_MutualTLS_STRICT {
				t.Errorf("%s: mtls mode must be STRICT", o)
			}
		}
	}
	if custom == 0 || extProc == 0 || allowOnly == 0 {
		t.Errorf("%s: want a CUSTOM AuthorizationPolicy (%d), an ext_proc EnvoyFilter (%d) and an ALLOW policy for the gateway only (%d)", istioDir, custom, extProc, allowOnly)
	}
}

func checkCustomPolicy(t *testing.T, o istioObject, ap *securityv1beta1.AuthorizationPolicy, providers map[string]*meshv1alpha1.MeshConfig_ExtensionProvider, cfg *config.Config) {
	t.Helper()
	name := ap.GetProvider().GetName()
	if providers[name] == nil {
		t.Errorf("%s: provider %q is not in %s's extensionProviders", o, name, istioMeshFile)
	}
	var paths []string
	for _, r := range ap.GetRules() {
		for _, to := range r.GetTo() {
			paths = append(paths, to.GetOperation().GetPaths()...)
		}
	}
	for _, tg := range cfg.Targets {
		if !slices.Contains(paths, tg.PathPrefix) {
			t.Errorf("%s: target %s's path %s is not sent to airlock", o, tg.Name, tg.PathPrefix)
		}
	}
}

// checkGatewayOnly: the ALLOW policy on airlock admits only principals on
// the gRPC ports.
func checkGatewayOnly(t *testing.T, o istioObject, ap *securityv1beta1.AuthorizationPolicy, cfg *config.Config) {
	t.Helper()
	grpc := []string{fmt.Sprint(portOf(t, cfg.Listen.Authz)), fmt.Sprint(portOf(t, cfg.Listen.Proc))}
	for i, r := range ap.GetRules() {
		var ports []string
		for _, to := range r.GetTo() {
			ports = append(ports, to.GetOperation().GetPorts()...)
		}
		opensGRPC := slices.ContainsFunc(ports, func(p string) bool { return slices.Contains(grpc, p) }) || len(ports) == 0
		if !opensGRPC {
			continue
		}
		if len(r.GetFrom()) == 0 {
			t.Errorf("%s: rules[%d] admits anyone to the gRPC ports", o, i)
		}
		for _, f := range r.GetFrom() {
			if len(f.GetSource().GetPrincipals()) == 0 {
				t.Errorf("%s: rules[%d] admits sources by something other than their identity", o, i)
			}
		}
	}
}

// checkEnvoyFilter validates every patch as the Envoy type it carries and
// returns how many insert airlock's ext_proc filter.
func checkEnvoyFilter(t *testing.T, o istioObject, ef *networkingv1alpha3.EnvoyFilter, cfg *config.Config) int {
	t.Helper()
	want := airlockExtProc(t, cfg)
	n := 0
	for i, cp := range ef.GetConfigPatches() {
		if cp.GetApplyTo() != networkingv1alpha3.EnvoyFilter_HTTP_FILTER {
			t.Errorf("%s: configPatches[%d]: applyTo %s is not checked here", o, i, cp.GetApplyTo())
			continue
		}
		j, err := protojson.Marshal(cp.GetPatch().GetValue())
		if err != nil {
			t.Fatal(err)
		}
		hf := &hcmv3.HttpFilter{}
		if err := protojson.Unmarshal(j, hf); err != nil {
			t.Errorf("%s: configPatches[%d]: not an HttpFilter: %v", o, i, err)
			continue
		}
		if err := envoy.ValidateDeep(hf); err != nil {
			t.Errorf("%s: configPatches[%d]: %v", o, i, err)
		}
		if hf.GetName() != envoy.ExtProcFilter {
			continue
		}
		n++
		got := &extprocv3.ExternalProcessor{}
		if err := hf.GetTypedConfig().UnmarshalTo(got); err != nil {
			t.Errorf("%s: configPatches[%d]: %v", o, i, err)
			continue
		}
		if !slices.Contains(got.GetMetadataOptions().GetForwardingNamespaces().GetUntyped(), wire.AuthzNamespace) {
			t.Errorf("%s: ext_proc does not receive the %s metadata (airlock's decision)", o, wire.AuthzNamespace)
		}
		// The cluster differs (Istio's outbound cluster for airlock);
		// everything else is what airlock renders.
		got.GrpcService, want.GrpcService = nil, nil
		if !proto.Equal(got, want) {
			g, _ := protojson.Marshal(got)
			w, _ := protojson.Marshal(want)
			t.Errorf("%s: the ext_proc filter differs from airlock's:\n got %s\nwant %s", o, g, w)
		}
	}
	return n
}

// airlockExtProc is the ext_proc filter config airlock renders for its own
// Envoy from cfg.
func airlockExtProc(t *testing.T, cfg *config.Config) *extprocv3.ExternalProcessor {
	t.Helper()
	res, err := envoy.Build(cfg, envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, fc := range res.Listener.GetFilterChains() {
		for _, nf := range fc.GetFilters() {
			hcm := &hcmv3.HttpConnectionManager{}
			if nf.GetTypedConfig().UnmarshalTo(hcm) != nil {
				continue
			}
			for _, hf := range hcm.GetHttpFilters() {
				if hf.GetName() == envoy.ExtProcFilter {
					p := &extprocv3.ExternalProcessor{}
					if err := hf.GetTypedConfig().UnmarshalTo(p); err != nil {
						t.Fatal(err)
					}
					return p
				}
			}
		}
	}
	t.Fatal("airlock renders no ext_proc filter for the chart's airlock.yaml")
	return nil
}
