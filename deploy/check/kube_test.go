package check

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"reflect"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// object is one Kubernetes object of a manifest: its source (file and
// document index), apiVersion/kind, name and raw JSON.
type object struct {
	Source     string
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name      string `json:"name"`
		Namespace string `json:"namespace"`
	} `json:"metadata"`
	JSON []byte
}

func (o object) String() string {
	return fmt.Sprintf("%s: %s %s/%s", o.Source, o.Kind, o.Metadata.Namespace, o.Metadata.Name)
}

// splitManifest splits a multi-document YAML manifest into objects,
// skipping empty documents (a template that rendered nothing).
func splitManifest(t *testing.T, source string, manifest []byte) []object {
	t.Helper()
	objs, err := parseManifest(source, manifest)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func parseManifest(source string, manifest []byte) ([]object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(manifest)))
	var out []object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		j, err := yaml.YAMLToJSONStrict(doc) // duplicate keys are errors, as in the API server
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		if s := strings.TrimSpace(string(j)); s == "null" || s == "{}" {
			continue
		}
		var o object
		if err := kjson.UnmarshalCaseSensitivePreserveInts(j, &o); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", source, i, err)
		}
		o.Source, o.JSON = fmt.Sprintf("%s#%d", source, i), j
		out = append(out, o)
	}
}

// strictDecode decodes o's JSON into v the way the API server's strict
// field validation does: case-sensitive field names, unknown and
// duplicate fields are errors (encoding/json would accept
// `readinessprobe` for readinessProbe and drop what it does not know).
func strictDecode(o object, v any) error {
	strict, err := kjson.UnmarshalStrict(o.JSON, v, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return fmt.Errorf("%s: %w", o, err)
	}
	if len(strict) > 0 {
		return fmt.Errorf("%s: %v", o, strict)
	}
	return nil
}

// kubeTypes maps apiVersion/kind to the Go type of the Kubernetes objects
// the chart renders.
var kubeTypes = map[string]reflect.Type{
	"v1/ConfigMap":                            reflect.TypeFor[corev1.ConfigMap](),
	"v1/Service":                              reflect.TypeFor[corev1.Service](),
	"v1/ServiceAccount":                       reflect.TypeFor[corev1.ServiceAccount](),
	"v1/PersistentVolumeClaim":                reflect.TypeFor[corev1.PersistentVolumeClaim](),
	"apps/v1/Deployment":                      reflect.TypeFor[appsv1.Deployment](),
	"networking.k8s.io/v1/NetworkPolicy":      reflect.TypeFor[networkingv1.NetworkPolicy](),
	"policy/v1/PodDisruptionBudget":           reflect.TypeFor[policyv1.PodDisruptionBudget](),
	"monitoring.coreos.com/v1/ServiceMonitor": reflect.TypeFor[monitoringv1.ServiceMonitor](),
	"monitoring.coreos.com/v1/PrometheusRule": reflect.TypeFor[monitoringv1.PrometheusRule](),
}

// decodeKube strictly decodes o into its Kubernetes type and returns it.
func decodeKube(o object) (any, error) {
	typ, ok := kubeTypes[o.APIVersion+"/"+o.Kind]
	if !ok {
		return nil, fmt.Errorf("%s: apiVersion %s kind %s is not a type this check knows", o, o.APIVersion, o.Kind)
	}
	v := reflect.New(typ)
	if err := strictDecode(o, v.Interface()); err != nil {
		return nil, err
	}
	return v.Interface(), nil
}

// TestStrictDecode: the decoder the chart's objects go through refuses
// what the API server's strict field validation refuses, where
// encoding/json would not: a field spelt in another case, an unknown
// field, a duplicate.
func TestStrictDecode(t *testing.T) {
	for _, tc := range []struct{ name, manifest string }{
		{"field in another case", "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {Type: ClusterIP}\n"},
		{"readinessprobe", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b, readinessprobe: {tcpSocket: {port: 1}}}]\n"},
		{"unknown field", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndatas: {a: b}\n"},
		{"duplicate field", "{\"apiVersion\": \"v1\", \"kind\": \"ConfigMap\", \"metadata\": {\"name\": \"x\"}, \"data\": {}, \"data\": {}}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, err := parseManifest(tc.name, []byte(tc.manifest))
			if err == nil {
				if len(objs) != 1 {
					t.Fatalf("%d objects", len(objs))
				}
				_, err = decodeKube(objs[0])
			}
			if err == nil {
				t.Errorf("strict decode took %q", tc.manifest)
			}
		})
	}
}
