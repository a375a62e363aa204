//go:build egctl

package check

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/airlock-mcp/airlock/envoy"
	// Registers the admin ConfigDump types egctl prints.
	_ "github.com/envoyproxy/go-control-plane/envoy/admin/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/file/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/health_check/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/listener/tls_inspector/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/load_balancing_policies/least_request/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// TestEgctlTranslate runs Envoy Gateway's own translator (egctl x
// translate, the binary named by $EGCTL; `make check-envoy-gateway` builds
// it) on deploy/envoy-gateway with the Secrets and ConfigMap it refers to,
// requires every policy and route to be accepted with its references
// resolved, checks the xDS for what airlock needs, and compares it with a
// golden (-update rewrites it).
func TestEgctlTranslate(t *testing.T) {
	bin := os.Getenv("EGCTL")
	if bin == "" {
		t.Fatal("EGCTL must name the egctl binary: run `make check-envoy-gateway`")
	}
	dir := t.TempDir()
	writeTLS(t, filepath.Join(dir, "server"), "airlock.airlock-system.svc", filepath.Join(dir, "client"), "spiffe://cluster.local/ns/envoy-gateway-system/sa/envoy")
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		return base64.StdEncoding.EncodeToString(b)
	}
	ca, _ := os.ReadFile(filepath.Join(dir, "server/ca.crt"))
	var in bytes.Buffer
	fmt.Fprintf(&in, `apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata: {name: envoy-gateway}
spec: {controllerName: gateway.envoyproxy.io/gatewayclass-controller}
---
apiVersion: v1
kind: Secret
metadata: {name: mcp-example-com-tls, namespace: mcp}
type: kubernetes.io/tls
data: {tls.crt: %[1]s, tls.key: %[2]s}
---
apiVersion: v1
kind: Secret
metadata: {name: airlock-client, namespace: mcp}
type: kubernetes.io/tls
data: {tls.crt: %[3]s, tls.key: %[4]s}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: airlock-ca, namespace: airlock-system}
data:
  ca.crt: |
%[5]s
`, read("server/tls.crt"), read("server/tls.key"), read("client/tls.crt"), read("client/tls.key"), indent(string(ca), "    "))
	// airlock's Service as the chart renders it, and the MCP server's.
	rendered, err := render(t, loadChart(t), map[string]any{})
	if err != nil {
		t.Fatal(err)
	}
	svc := strings.Replace(rendered["airlock/templates/service.yaml"], "metadata:\n", "metadata:\n  namespace: airlock-system\n", 1)
	fmt.Fprintf(&in, "---\n%s\n---\n%s", svc, `apiVersion: v1
kind: Service
metadata: {name: github-mcp, namespace: mcp}
spec:
  selector: {app: github-mcp}
  ports: [{name: http, port: 8080, targetPort: 8080, protocol: TCP}]
`)
	files, _ := filepath.Glob(filepath.Join(envoyGatewayDir, "*.yaml"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		in.WriteString("---\n")
		in.Write(b)
	}
	inFile := filepath.Join(dir, "in.yaml")
	writeFile(t, inFile, in.String())
	translate := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"x", "translate", "--from", "gateway-api", "--add-missing-resources", "-o", "yaml", "-f", inFile}, args...)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("egctl x translate %v: %v\n%s", args, err, stderr.String())
		}
		return out
	}
	// Envoy Gateway's verdict on each resource: every condition True.
	for _, doc := range bytes.Split(translate("--to", "gateway-api"), []byte("\n---\n")) {
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatalf("egctl output: %v", err)
		}
		checkConditions(t, "", v)
	}
	// The xDS it renders (secrets left out: the test's keys are random).
	var out []byte
	var docs []any
	for i, typ := range []string{"listener", "route", "cluster"} {
		doc := translate("--to", "xds", "--type", typ)
		var v any
		if err := yaml.Unmarshal(doc, &v); err != nil {
			t.Fatalf("egctl output: %v", err)
		}
		docs = append(docs, v)
		if i > 0 {
			out = append(out, "---\n"...)
		}
		out = append(out, doc...)
	}
	for _, want := range []string{
		"airlock_target", "envoy.filters.http.ext_authz", "envoy.filters.http.ext_proc",
		"timeout: 30s", "allowModeOverride: true", "requestBodyMode: BUFFERED", "responseBodyMode: STREAMED",
		"airlock_target: github", "clearRouteCache: true", "timeout: 0s",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("egctl's xDS lacks %q", want)
		}
	}
	for _, bad := range []string{"failureModeAllow: true"} {
		if bytes.Contains(out, []byte(bad)) {
			t.Errorf("egctl's xDS has %q: airlock's filters must fail closed", bad)
		}
	}
	// Envoy reaches ext_authz and ext_proc with mutual TLS and ALPN h2.
	// What Envoy Gateway renders passes airlock's deep validation too.
	dumps := 0
	for _, d := range docs {
		m, _ := d.(map[string]any)
		xds, _ := m["xds"].(map[string]any)
		for name, dump := range xds {
			j, err := json.Marshal(dump)
			if err != nil {
				t.Fatal(err)
			}
			a := &anypb.Any{}
			if err := protojson.Unmarshal(j, a); err != nil {
				t.Errorf("egctl xDS %s: %v", name, err)
				continue
			}
			for _, err := range unwrapJoined(envoy.ValidateDeep(a)) {
				t.Errorf("egctl xDS %s: %v", name, err)
			}
			dumps++
		}
	}
	if dumps < 3 {
		t.Errorf("egctl gave %d xDS dumps, want listeners, routes and clusters", dumps)
	}
	if n := countAirlockTLS(t, docs); n < 2 {
		t.Errorf("%d upstream TLS contexts for airlock (sni airlock.airlock-system.svc), want one for ext_authz and one for ext_proc", n)
	}
	golden(t, filepath.Join(envoyGatewayDir, "testdata", "egctl-translate.golden.yaml"), scrubPEM(out))
}

// checkConditions fails on any status condition that is not True
// (Accepted, ResolvedRefs, Programmed ...): Envoy Gateway refused something.
func checkConditions(t *testing.T, path string, v any) {
	switch x := v.(type) {
	case map[string]any:
		if typ, ok := x["type"].(string); ok {
			if st, ok := x["status"].(string); ok && st != "True" && x["reason"] != nil {
				t.Errorf("%s: condition %s is %s: %v: %v", path, typ, st, x["reason"], x["message"])
			}
		}
		for k, e := range x {
			checkConditions(t, path+"."+k, e)
		}
	case []any:
		for i, e := range x {
			checkConditions(t, fmt.Sprintf("%s[%d]", path, i), e)
		}
	}
}

// unwrapJoined splits an errors.Join result into its errors.
func unwrapJoined(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}

// countAirlockTLS counts the UpstreamTlsContexts for airlock's Service in
// v, failing on any without a client certificate or without ALPN h2.
func countAirlockTLS(t *testing.T, v any) int {
	n := 0
	switch x := v.(type) {
	case map[string]any:
		if x["@type"] == "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext" && x["sni"] == "airlock.airlock-system.svc" {
			n++
			ctx, _ := x["commonTlsContext"].(map[string]any)
			alpn, _ := ctx["alpnProtocols"].([]any)
			certs, _ := ctx["tlsCertificateSdsSecretConfigs"].([]any)
			if len(certs) == 0 || !slices.Contains(alpn, any("h2")) {
				t.Errorf("airlock's upstream TLS lacks the client certificate or ALPN h2: %v", ctx)
			}
		}
		for _, e := range x {
			n += countAirlockTLS(t, e)
		}
	case []any:
		for _, e := range x {
			n += countAirlockTLS(t, e)
		}
	}
	return n
}

func indent(s, pre string) string {
	return pre + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n"+pre)
}

func scrubPEM(b []byte) []byte {
	var out []string
	skip := false
	for _, l := range strings.Split(string(b), "\n") {
		switch {
		case strings.Contains(l, "-----BEGIN"):
			skip = true
			out = append(out, strings.SplitN(l, "-----BEGIN", 2)[0]+"<pem>")
		case strings.Contains(l, "-----END"):
			skip = false
		case !skip:
			out = append(out, l)
		}
	}
	return []byte(strings.Join(out, "\n"))
}
