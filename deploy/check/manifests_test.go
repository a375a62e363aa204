package check

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/airlock-mcp/airlock/internal/config"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
)

// loadManifests reads every *.yaml file in dir as Kubernetes manifests.
func loadManifests(t *testing.T, dir string) []object {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s (%v)", dir, err)
	}
	slices.Sort(files)
	var out []object
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, splitManifest(t, f, b)...)
	}
	return out
}

// decodeAll strictly decodes every object into the Go type types names
// for its apiVersion/kind; an object of any other kind is an error (a
// manifest this check cannot read is a manifest nobody checked).
func decodeAll(t *testing.T, objs []object, types map[string]reflect.Type) map[string][]any {
	t.Helper()
	out := map[string][]any{}
	for _, o := range objs {
		typ, ok := types[o.APIVersion+"/"+o.Kind]
		if !ok {
			t.Errorf("%s: apiVersion %s kind %s is not a type this check knows", o, o.APIVersion, o.Kind)
			continue
		}
		v := reflect.New(typ)
		if err := strictDecode(o, v.Interface()); err != nil {
			t.Error(err)
			continue
		}
		out[o.Kind] = append(out[o.Kind], v.Interface())
	}
	return out
}

// chartConfig is the airlock.yaml the chart renders with the values in
// file (under the chart; "" for the defaults), loaded by internal/config (defaults applied) with the pod's
// files laid out: the airlock the platform manifests in deploy/ are
// written for.
func chartConfig(t *testing.T, file string) *config.Config {
	t.Helper()
	objs := renderObjects(t, loadChart(t), readValues(t, file))
	dep := objs["Deployment/"+release].(*appsv1.Deployment)
	path, _ := layOutPod(t, objs["ConfigMap/"+release].(*corev1.ConfigMap), objs["ConfigMap/"+release+"-policies"].(*corev1.ConfigMap), dep.Spec.Template.Spec.Containers[0].Env)
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// portOf is the port of a host:port listen address.
func portOf(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("listen address %q: %v", addr, err)
	}
	return n
}
