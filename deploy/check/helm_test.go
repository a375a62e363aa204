package check

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"google.golang.org/protobuf/proto"
	"helm.sh/helm/v4/pkg/chart/common"
	"helm.sh/helm/v4/pkg/chart/common/util"
	chart "helm.sh/helm/v4/pkg/chart/v2"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
)

const (
	chartDir  = "../helm/airlock"
	namespace = "airlock-system"
	release   = "airlock"
	// kubeVersion is the Kubernetes the chart is rendered and linted for
	// (Helm's own default in tests is v1.20, below the chart's floor).
	kubeVersion = "v1.33.0"
)

func TestValuesSchema(t *testing.T) {
	base, err := os.ReadFile("schema/chart.json")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := FieldDocs(filepath.Join(repoRoot, "internal/config"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ValuesSchema(base, docs)
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join(chartDir, "values.schema.json"), got)

	// Every enum names a field that exists (a misspelt path would
	// silently leave the field open).
	_, paths := configSchema(nil)
	for p := range enums {
		if !paths[p] {
			t.Errorf("enums[%q]: no such field in internal/config's Config", p)
		}
	}
}

// helmCase is one set of values the chart is rendered with: the defaults,
// or a file of representative values under the chart's ci/ directory.
type helmCase struct {
	name   string
	values string // a file under chartDir, "" for the defaults
	// grpcLiveness: the liveness probe is kubelet's gRPC probe (no TLS
	// on the ext_authz port) rather than /healthz.
	grpcLiveness bool
	envoy        bool
}

var helmCases = []helmCase{
	{name: "default"},
	{name: "own-envoy", values: "ci/own-envoy-values.yaml", envoy: true},
	{name: "istio-mesh", values: "ci/istio-mesh-values.yaml", grpcLiveness: true},
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	ch, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("helm load %s: %v", chartDir, err)
	}
	return ch
}

func readValues(t *testing.T, file string) map[string]any {
	t.Helper()
	if file == "" {
		return map[string]any{}
	}
	v, err := common.ReadValuesFile(filepath.Join(chartDir, file))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func capabilities(t *testing.T) *common.Capabilities {
	t.Helper()
	kv, err := common.ParseKubeVersion(kubeVersion)
	if err != nil {
		t.Fatal(err)
	}
	caps := *common.DefaultCapabilities
	caps.KubeVersion = *kv
	return &caps
}

// render renders the chart as `helm install` would (values checked
// against values.schema.json) and returns the manifests by template.
func render(t *testing.T, ch *chart.Chart, vals map[string]any) (map[string]string, error) {
	t.Helper()
	rv, err := util.ToRenderValuesWithSchemaValidation(ch, vals, common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}, capabilities(t), false)
	if err != nil {
		return nil, err
	}
	return engine.Render(ch, rv)
}

func TestHelmChart(t *testing.T) {
	ch := loadChart(t)
	for _, tc := range helmCases {
		t.Run(tc.name, func(t *testing.T) {
			vals := readValues(t, tc.values)
			kv, _ := common.ParseKubeVersion(kubeVersion)
			linted := lint.RunAll(chartDir, vals, namespace, lint.WithKubeVersion(kv))
			for _, m := range linted.Messages {
				if m.Severity >= support.WarningSev {
					t.Errorf("helm lint: %s", m)
				}
			}
			checkChartObjects(t, tc, renderObjects(t, ch, vals))
		})
	}
}

// renderObjects renders the chart with vals and strictly decodes every
// object into its Kubernetes type, by "Kind/name".
func renderObjects(t *testing.T, ch *chart.Chart, vals map[string]any) map[string]any {
	t.Helper()
	out, err := render(t, ch, vals)
	if err != nil {
		t.Fatalf("helm render: %v", err)
	}
	objs := map[string]any{}
	for _, name := range slices.Sorted(maps.Keys(out)) {
		if strings.HasSuffix(name, "NOTES.txt") {
			continue
		}
		for _, o := range splitManifest(t, name, []byte(out[name])) {
			v, err := decodeKube(o)
			if err != nil {
				t.Error(err)
				continue
			}
			objs[o.Kind+"/"+o.Metadata.Name] = v
		}
	}
	return objs
}

// checkChartObjects checks what the rendered objects say together: the
// rendered airlock.yaml passes `airlock validate` with the policies the
// chart mounts, only the gateway reaches the gRPC ports, the probes, and
// (with the chart's Envoy) that its bootstrap is what `airlock envoy
// bootstrap` prints.
func checkChartObjects(t *testing.T, tc helmCase, objs map[string]any) {
	dep, ok := objs["Deployment/airlock"].(*appsv1.Deployment)
	if !ok {
		t.Fatalf("no Deployment airlock among %d objects", len(objs))
	}
	cm := objs["ConfigMap/airlock"].(*corev1.ConfigMap)
	pol := objs["ConfigMap/airlock-policies"].(*corev1.ConfigMap)
	c := dep.Spec.Template.Spec.Containers[0]
	if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" {
		t.Errorf("readiness probe %+v: want GET /readyz", c.ReadinessProbe)
	}
	if got := c.LivenessProbe != nil && c.LivenessProbe.GRPC != nil; got != tc.grpcLiveness {
		t.Errorf("liveness probe %+v: gRPC health = %v, want %v", c.LivenessProbe, got, tc.grpcLiveness)
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Errorf("container security context %+v: want a read-only root and no privilege escalation", sc)
	}
	open := map[int32]bool{8080: true}
	if tc.envoy {
		open[443] = true // Envoy's listener: public_url's port
	}
	if np, ok := objs["NetworkPolicy/airlock"].(*networkingv1.NetworkPolicy); !ok {
		t.Error("no NetworkPolicy")
	} else {
		checkNetworkPolicy(t, np, open)
	}

	// The policies the chart ships are the repository's default policy.
	for file, src := range map[string]string{"decision.rego": "policies/airlock/decision.rego", "data.yaml": "policies/data.yaml"} {
		want, err := os.ReadFile(filepath.Join(repoRoot, src))
		if err != nil {
			t.Fatal(err)
		}
		if pol.Data[file] != string(want) {
			t.Errorf("the chart's policies ConfigMap %s differs from %s: copy it to deploy/helm/airlock/files/policies/", file, src)
		}
	}

	cfgPath, r := layOutPod(t, cm, pol, c.Env)
	validate(t, cfgPath)

	if !tc.envoy {
		if _, ok := objs["Deployment/airlock-envoy"]; ok {
			t.Error("envoy.enabled is false but an Envoy Deployment rendered")
		}
		return
	}
	if len(dep.Spec.Template.Spec.Containers) != 2 || dep.Spec.Template.Spec.Containers[1].Name != "envoy" {
		t.Errorf("envoy.enabled: want an envoy container beside airlock, got %d containers", len(dep.Spec.Template.Spec.Containers))
	}
	// Envoy in the pod reaches airlock's services where airlock renders
	// them: on loopback.
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := envoy.BuildDynamic(cfg, envoy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range dyn.Clusters {
		if !strings.HasPrefix(c.GetName(), "airlock_") {
			continue
		}
		for _, le := range c.GetLoadAssignment().GetEndpoints() {
			for _, e := range le.GetLbEndpoints() {
				// 0.0.0.0 as a destination is this host: the pod's
				// network namespace, as loopback is.
				if a := e.GetEndpoint().GetAddress().GetSocketAddress().GetAddress(); a != "127.0.0.1" && a != "0.0.0.0" {
					t.Errorf("cluster %s reaches %s: Envoy in airlock's pod reaches only its own pod", c.GetName(), a)
				}
			}
		}
	}
	ecm, ok := objs["ConfigMap/airlock-envoy"].(*corev1.ConfigMap)
	if !ok {
		t.Fatal("envoy.enabled: no ConfigMap airlock-envoy")
	}
	chartBootstrap, err := envoy.ParseBootstrap([]byte(ecm.Data["envoy.yaml"]))
	if err != nil {
		t.Fatalf("the chart's Envoy bootstrap: %v", err)
	}
	out, errs, code := runAirlock(t, "envoy", "bootstrap", "--config", cfgPath)
	if code != 0 {
		t.Fatalf("airlock envoy bootstrap: exit %d: %s", code, errs)
	}
	want, err := envoy.ParseBootstrap([]byte(r.out(out)))
	if err != nil {
		t.Fatalf("airlock envoy bootstrap: %v", err)
	}
	if !proto.Equal(chartBootstrap, want) {
		got, _ := envoy.YAML(chartBootstrap)
		w, _ := envoy.YAML(want)
		t.Errorf("the chart's Envoy bootstrap differs from `airlock envoy bootstrap`:\n--- chart\n%s\n--- airlock\n%s", got, w)
	}
}

// checkNetworkPolicy: the gRPC ports are reached only from the gateway's
// pods, and nothing is open to all but the ports in open (HTTP, and the
// chart's Envoy listener).
func checkNetworkPolicy(t *testing.T, np *networkingv1.NetworkPolicy, open map[int32]bool) {
	t.Helper()
	grpc := map[int32]bool{9001: true, 9002: true, 18000: true}
	for i, rule := range np.Spec.Ingress {
		opensGRPC := false
		for _, p := range rule.Ports {
			if p.Port != nil && grpc[p.Port.IntVal] {
				opensGRPC = true
			}
		}
		if !opensGRPC {
			for _, p := range rule.Ports {
				if p.Port == nil || !open[p.Port.IntVal] {
					t.Errorf("ingress[%d] opens %v to all: only %v may be", i, p.Port, open)
				}
			}
			continue
		}
		if len(rule.From) == 0 {
			t.Errorf("ingress[%d] opens the gRPC ports to every peer", i)
		}
		for j, peer := range rule.From {
			if peer.PodSelector == nil || len(peer.PodSelector.MatchLabels)+len(peer.PodSelector.MatchExpressions) == 0 {
				t.Errorf("ingress[%d].from[%d] selects every pod of its namespaces", i, j)
			}
		}
	}
}

// layOutPod lays the files airlock's pod sees out under a temporary root:
// airlock.yaml and the policies from their ConfigMaps, the TLS Secret's
// files (a throw-away CA), and the credentials the container's env takes
// from Secrets, as environment variables. It returns airlock.yaml's path.
func layOutPod(t *testing.T, cm, pol *corev1.ConfigMap, env []corev1.EnvVar) (string, rooted) {
	t.Helper()
	r := rooted{root: t.TempDir(), prefixes: []string{"/etc/airlock", "/etc/envoy/airlock", "/var/lib/airlock"}}
	for name, body := range pol.Data {
		writeFile(t, filepath.Join(r.root, "etc/airlock/policies", name), body)
	}
	writeTLS(t, filepath.Join(r.root, "etc/airlock/tls"), "airlock.airlock-system.svc", filepath.Join(r.root, "etc/envoy/airlock"), "spiffe://cluster.local/ns/envoy-gateway-system/sa/envoy")
	for _, e := range env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			t.Setenv(e.Name, "secret-from-"+e.ValueFrom.SecretKeyRef.Name) // what the Secret would hold
		}
	}
	cfgPath := filepath.Join(r.root, "etc/airlock/airlock.yaml")
	writeFile(t, cfgPath, r.in(cm.Data["airlock.yaml"]))
	return cfgPath, r
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestHelmValuesSchema: the values schema refuses unknown keys and bad
// values before anything renders, in the chart's keys and in airlock.yaml,
// and takes good ones.
func TestHelmValuesSchema(t *testing.T) {
	ch := loadChart(t)
	for _, tc := range []struct {
		name, values, want string // want "": accepted
	}{
		{"durations as airlock reads them", "config: {grants: {hold_window: 20s, pending_ttl: 1h30m}}", ""},
		{"a webhook with an enum value", "config: {notifications: {webhooks: [{name: ops, url_env: OPS_URL, format: slack}]}}", ""},
		{"a default deleted with null", "config: {log: null}", ""},
		{"unknown top-level key", "replicas: 2", "replicas"},
		{"unknown config key", "config: {listen: {authz_port: 9001}}", "authz_port"},
		{"misspelt target key", "config: {targets: [{name: x, upstream: 'http://x/mcp', credentials: {env: X}}]}", "credentials"},
		{"duration as a number", "config: {grants: {hold_window: 25}}", "hold_window"},
		{"duration in words", "config: {grants: {hold_window: 25 seconds}}", "hold_window"},
		{"log level outside the set", "config: {log: {level: verbose}}", "level"},
		{"string for an integer", "config: {limits: {max_request_bytes: 1MiB}}", "max_request_bytes"},
		{"unknown envoy key", "envoy: {enable: true}", "enable"},
		{"bad pull policy", "image: {pullPolicy: Sometimes}", "pullPolicy"},
		{"bad volume size", "persistence: {size: lots}", "size"},
		{"replicas on the file store", "replicaCount: 2", "replicaCount > 1 needs config.grants.store: postgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vals, err := common.ReadValues([]byte(tc.values))
			if err != nil {
				t.Fatal(err)
			}
			_, err = render(t, ch, vals)
			if tc.want == "" {
				if err != nil {
					t.Errorf("values %q refused: %v", tc.values, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("values %q rendered; the schema should refuse them", tc.values)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("values %q: error %q does not name %q", tc.values, err, tc.want)
			}
		})
	}
}
