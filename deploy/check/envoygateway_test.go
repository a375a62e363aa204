package check

import (
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/wire"
	egv1a1 "github.com/envoyproxy/gateway/api/v1alpha1"
	gwapiv1 "sigs.k8s.io/gateway-api/apis/v1"
	gwapiv1b1 "sigs.k8s.io/gateway-api/apis/v1beta1"
)

const envoyGatewayDir = "../envoy-gateway"

var envoyGatewayTypes = map[string]reflect.Type{
	"gateway.envoyproxy.io/v1alpha1/SecurityPolicy":       reflect.TypeFor[egv1a1.SecurityPolicy](),
	"gateway.envoyproxy.io/v1alpha1/EnvoyExtensionPolicy": reflect.TypeFor[egv1a1.EnvoyExtensionPolicy](),
	"gateway.envoyproxy.io/v1alpha1/EnvoyProxy":           reflect.TypeFor[egv1a1.EnvoyProxy](),
	"gateway.networking.k8s.io/v1/Gateway":                reflect.TypeFor[gwapiv1.Gateway](),
	"gateway.networking.k8s.io/v1/HTTPRoute":              reflect.TypeFor[gwapiv1.HTTPRoute](),
	"gateway.networking.k8s.io/v1/BackendTLSPolicy":       reflect.TypeFor[gwapiv1.BackendTLSPolicy](),
	"gateway.networking.k8s.io/v1beta1/ReferenceGrant":    reflect.TypeFor[gwapiv1b1.ReferenceGrant](),
}

type envoyGateway struct {
	security  []*egv1a1.SecurityPolicy
	extension []*egv1a1.EnvoyExtensionPolicy
	routes    []*gwapiv1.HTTPRoute
	grants    []*gwapiv1b1.ReferenceGrant
	tls       []*gwapiv1.BackendTLSPolicy
	proxies   []*egv1a1.EnvoyProxy
}

func loadEnvoyGateway(t *testing.T) envoyGateway {
	t.Helper()
	objs := decodeAll(t, loadManifests(t, envoyGatewayDir), envoyGatewayTypes)
	var eg envoyGateway
	for _, v := range objs["SecurityPolicy"] {
		eg.security = append(eg.security, v.(*egv1a1.SecurityPolicy))
	}
	for _, v := range objs["EnvoyExtensionPolicy"] {
		eg.extension = append(eg.extension, v.(*egv1a1.EnvoyExtensionPolicy))
	}
	for _, v := range objs["HTTPRoute"] {
		eg.routes = append(eg.routes, v.(*gwapiv1.HTTPRoute))
	}
	for _, v := range objs["ReferenceGrant"] {
		eg.grants = append(eg.grants, v.(*gwapiv1b1.ReferenceGrant))
	}
	for _, v := range objs["BackendTLSPolicy"] {
		eg.tls = append(eg.tls, v.(*gwapiv1.BackendTLSPolicy))
	}
	for _, v := range objs["EnvoyProxy"] {
		eg.proxies = append(eg.proxies, v.(*egv1a1.EnvoyProxy))
	}
	if len(eg.security) == 0 || len(eg.extension) == 0 || len(eg.grants) == 0 || len(eg.tls) == 0 {
		t.Fatalf("%s: want SecurityPolicy, EnvoyExtensionPolicy, ReferenceGrant and BackendTLSPolicy", envoyGatewayDir)
	}
	return eg
}

// extAuthTimeoutOK says whether Envoy Gateway's ext_authz timeout lets a
// held call wait out airlock's whole hold window (and be answered).
func extAuthTimeoutOK(ea *egv1a1.ExtAuth, hold time.Duration) error {
	if ea.Timeout == nil {
		return fmt.Errorf("extAuth.timeout is unset: Envoy Gateway's default (10s) cuts off airlock's %s approval hold", hold)
	}
	d, err := time.ParseDuration(string(*ea.Timeout))
	if err != nil {
		return fmt.Errorf("extAuth.timeout %q: %w", *ea.Timeout, err)
	}
	if d <= hold {
		return fmt.Errorf("extAuth.timeout %s does not exceed airlock's grants.hold_window %s: a held call is cut off before it is approved", d, hold)
	}
	return nil
}

// TestEnvoyGatewayTimeoutExceedsHoldWindow: every SecurityPolicy's
// ext_authz timeout exceeds the hold window of the airlock the chart
// renders (and the checker refuses one that does not).
func TestEnvoyGatewayTimeoutExceedsHoldWindow(t *testing.T) {
	eg := loadEnvoyGateway(t)
	chartHold := chartConfig(t, "").Grants.HoldWindow
	for _, tc := range []struct {
		name   string
		hold   time.Duration
		wantOK bool
	}{
		{"the chart's hold window", chartHold, true},
		{"airlock's default hold window", config.GrantsDefaults().HoldWindow, true},
		{"a hold window as long as the timeout", 30 * time.Second, false},
		{"the longest hold window airlock accepts", 5 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, sp := range eg.security {
				err := extAuthTimeoutOK(sp.Spec.ExtAuth, tc.hold)
				if (err == nil) != tc.wantOK {
					t.Errorf("SecurityPolicy %s, hold window %s: %v, want ok=%v", sp.Name, tc.hold, err, tc.wantOK)
				}
			}
		})
	}
	if err := extAuthTimeoutOK(&egv1a1.ExtAuth{}, chartHold); err == nil {
		t.Error("an unset timeout (Envoy Gateway's 10s default) passed")
	}
}

// TestEnvoyGateway: the recipe gives airlock what it needs, as the
// issue's egctl translation showed: fail closed, the body, the target by
// context extension, the route recomputed, ext_proc with the modes masking
// needs and the ext_authz metadata, a ReferenceGrant for every reference
// across namespaces, and mutual TLS on the ports it reaches.
func TestEnvoyGateway(t *testing.T) {
	eg := loadEnvoyGateway(t)
	cfg := chartConfig(t, "")
	authzPort := portOf(t, cfg.Listen.Authz)
	procPort := portOf(t, cfg.Listen.Proc)
	routes := map[string]*gwapiv1.HTTPRoute{}
	for _, r := range eg.routes {
		routes[r.Namespace+"/"+r.Name] = r
	}
	targets := map[string]config.Target{}
	for _, tg := range cfg.Targets {
		targets[tg.Name] = tg
	}

	covered := map[string]bool{} // routes under ext_authz
	for _, sp := range eg.security {
		ea := sp.Spec.ExtAuth
		if ea == nil || ea.GRPC == nil {
			t.Errorf("SecurityPolicy %s: no gRPC extAuth", sp.Name)
			continue
		}
		if ea.FailOpen == nil || *ea.FailOpen {
			t.Errorf("SecurityPolicy %s: failOpen must be false", sp.Name)
		}
		if ea.RecomputeRoute == nil || !*ea.RecomputeRoute {
			t.Errorf("SecurityPolicy %s: recomputeRoute must be true (x-airlock-grant selects the grant's route)", sp.Name)
		}
		if ea.BodyToExtAuth == nil || int(ea.BodyToExtAuth.MaxRequestBytes) != cfg.Limits.MaxRequestBytes {
			t.Errorf("SecurityPolicy %s: bodyToExtAuth.maxRequestBytes must be airlock's limits.max_request_bytes (%d)", sp.Name, cfg.Limits.MaxRequestBytes)
		}
		target := ""
		for _, ce := range ea.ContextExtensions {
			if ce.Name == wire.ContextTarget && ce.Value != nil {
				target = *ce.Value
			}
		}
		tg, ok := targets[target]
		if !ok {
			t.Errorf("SecurityPolicy %s: context extension %s = %q names no target of the chart's airlock.yaml", sp.Name, wire.ContextTarget, target)
		}
		checkBackends(t, eg, "SecurityPolicy "+sp.Name, sp.Namespace, "SecurityPolicy", ea.GRPC.BackendRefs, authzPort)
		for _, ref := range sp.Spec.TargetRefs {
			key := sp.Namespace + "/" + string(ref.Name)
			r, ok := routes[key]
			if ref.Kind != "HTTPRoute" || !ok {
				t.Errorf("SecurityPolicy %s: targets %s %s, not a route in %s", sp.Name, ref.Kind, key, envoyGatewayDir)
				continue
			}
			covered[key] = true
			for _, rule := range r.Spec.Rules {
				if rule.Timeouts == nil || rule.Timeouts.Request == nil || *rule.Timeouts.Request != "0s" {
					t.Errorf("HTTPRoute %s: timeouts.request must be 0s: Envoy's default 15s route timeout cuts off SSE responses and server streams", key)
				}
				for _, m := range rule.Matches {
					if m.Path == nil || m.Path.Type == nil || *m.Path.Type != gwapiv1.PathMatchExact || m.Path.Value == nil || *m.Path.Value != tg.PathPrefix {
						t.Errorf("HTTPRoute %s: must match exactly %s, target %s's path_prefix (airlock serves nothing below it)", key, tg.PathPrefix, tg.Name)
					}
				}
			}
		}
	}

	processed := map[string]bool{}
	for _, ep := range eg.extension {
		for _, ref := range ep.Spec.TargetRefs {
			processed[ep.Namespace+"/"+string(ref.Name)] = true
		}
		for i, xp := range ep.Spec.ExtProc {
			name := fmt.Sprintf("EnvoyExtensionPolicy %s extProc[%d]", ep.Name, i)
			if xp.FailOpen == nil || *xp.FailOpen {
				t.Errorf("%s: failOpen must be false", name)
			}
			pm := xp.ProcessingMode
			if pm == nil || pm.Request == nil || pm.Request.Body == nil || *pm.Request.Body != egv1a1.BufferedExtProcBodyProcessingMode {
				t.Errorf("%s: the request body must be Buffered", name)
			}
			if pm == nil || pm.Response == nil || pm.Response.Body == nil || !slices.Contains([]egv1a1.ExtProcBodyProcessingMode{egv1a1.StreamedExtProcBodyProcessingMode, egv1a1.BufferedExtProcBodyProcessingMode, egv1a1.FullDuplexStreamedExtBodyProcessingMode}, *pm.Response.Body) {
				t.Errorf("%s: the response body must be Streamed (or Buffered, FullDuplexStreamed): anything else lets bytes reach the agent unmasked", name)
			}
			if pm == nil || !pm.AllowModeOverride {
				t.Errorf("%s: allowModeOverride must be true (airlock buffers JSON bodies, streams SSE)", name)
			}
			if xp.Metadata == nil || !slices.Contains(xp.Metadata.AccessibleNamespaces, wire.AuthzNamespace) {
				t.Errorf("%s: metadata.accessibleNamespaces must hold %s (airlock's decision)", name, wire.AuthzNamespace)
			}
			checkBackends(t, eg, name, ep.Namespace, "EnvoyExtensionPolicy", xp.BackendRefs, procPort)
		}
	}
	for _, p := range eg.proxies {
		if p.Spec.BackendTLS == nil || p.Spec.BackendTLS.ClientCertificateRef == nil || !slices.Contains(p.Spec.BackendTLS.ALPNProtocols, egv1a1.HTTPProtocolVersion2) {
			t.Errorf("EnvoyProxy %s: backendTLS needs a clientCertificateRef (airlock takes only mutual TLS) and alpnProtocols h2 (gRPC servers refuse TLS without it)", p.Name)
		}
	}
	if len(eg.proxies) == 0 {
		t.Error("no EnvoyProxy: nothing gives Envoy a client certificate for airlock")
	}
	for key := range covered {
		if !processed[key] {
			t.Errorf("HTTPRoute %s has ext_authz but no ext_proc: its responses would be neither masked nor recorded", key)
		}
	}
	for key, r := range routes {
		for _, rule := range r.Spec.Rules {
			for _, b := range rule.BackendRefs {
				if b.Namespace != nil && string(*b.Namespace) != r.Namespace && !referenceGranted(eg, "gateway.networking.k8s.io", "HTTPRoute", r.Namespace, string(*b.Namespace), string(b.Name)) {
					t.Errorf("HTTPRoute %s: backend %s/%s is not permitted by any ReferenceGrant", key, *b.Namespace, b.Name)
				}
			}
		}
	}
}

// checkBackends: each backend is the airlock Service on port, reachable
// across namespaces by a ReferenceGrant, and covered by a BackendTLSPolicy
// section for that port (mutual TLS).
func checkBackends(t *testing.T, eg envoyGateway, name, ns, kind string, refs []egv1a1.BackendRef, port int) {
	t.Helper()
	if len(refs) == 0 {
		t.Errorf("%s: no backendRefs", name)
	}
	for _, b := range refs {
		bns := ns
		if b.Namespace != nil {
			bns = string(*b.Namespace)
		}
		if b.Port == nil || int(*b.Port) != port {
			t.Errorf("%s: backend %s/%s port %v, want airlock's %d", name, bns, b.Name, b.Port, port)
		}
		if bns != ns && !referenceGranted(eg, egv1a1.GroupName, kind, ns, bns, string(b.Name)) {
			t.Errorf("%s: backend %s/%s is not permitted by any ReferenceGrant (Envoy Gateway refuses the policy)", name, bns, b.Name)
		}
		section := map[int]string{9001: "grpc-authz", 9002: "grpc-proc"}[port]
		found := false
		for _, p := range eg.tls {
			for _, tr := range p.Spec.TargetRefs {
				if p.Namespace == bns && string(tr.Name) == string(b.Name) && tr.SectionName != nil && string(*tr.SectionName) == section {
					found = true
				}
			}
		}
		if !found {
			t.Errorf("%s: no BackendTLSPolicy for %s/%s section %s: airlock's gRPC ports take only mutual TLS", name, bns, b.Name, section)
		}
	}
}

func referenceGranted(eg envoyGateway, group, kind, fromNS, toNS, service string) bool {
	for _, g := range eg.grants {
		if g.Namespace != toNS {
			continue
		}
		from := slices.ContainsFunc(g.Spec.From, func(f gwapiv1b1.ReferenceGrantFrom) bool {
			return string(f.Group) == group && string(f.Kind) == kind && string(f.Namespace) == fromNS
		})
		to := slices.ContainsFunc(g.Spec.To, func(to gwapiv1b1.ReferenceGrantTo) bool {
			return to.Group == "" && to.Kind == "Service" && (to.Name == nil || string(*to.Name) == service)
		})
		if from && to {
			return true
		}
	}
	return false
}
