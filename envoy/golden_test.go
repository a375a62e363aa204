package envoy

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"google.golang.org/protobuf/proto"

	"github.com/airlock-mcp/airlock/internal/config"
)

// update rewrites every golden file under testdata: go test ./envoy -update.
var update = flag.Bool("update", false, "rewrite the golden files under testdata")

func loadConfig(t testing.TB) *config.Config {
	t.Helper()
	return loadConfigFile(t, "airlock.yaml")
}

func loadConfigFile(t testing.TB, name string) *config.Config {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func loadModel(t testing.TB, name string) *Model {
	t.Helper()
	m, err := NewModel(loadConfigFile(t, name), Bound{})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// doc is one rendered resource of a golden file.
type doc struct {
	name string
	m    proto.Message
}

// goldens are small inputs (a configuration under testdata, the bound
// addresses, what to render) and the files under testdata holding what
// they render to. Every rendered resource is also validated deeply,
// rendered twice to the same bytes, and a bootstrap must read back (as
// Envoy reads it) to the same proto.
var goldens = []struct {
	out    string
	config string
	bound  Bound
	render func(t *testing.T, m *Model) []doc
}{
	{out: "static-bootstrap.yaml", config: "airlock.yaml", render: staticBootstrap},
	{out: "ads-dynamic.yaml", config: "airlock.yaml", render: dynamicDocs},
	{out: "ads-bootstrap.yaml", render: adsBootstrap(ADSOptions{})},
	{out: "ads-bootstrap-sotw.yaml", render: adsBootstrap(ADSOptions{SotW: true})},
	{out: "grant-scope.yaml", config: "airlock.yaml", render: func(t *testing.T, m *Model) []doc {
		g := Grant{ID: "gr_01HZX:7f", Target: "github", Tool: "create_issue", Expiry: t0.Add(15*time.Minute + 1500*time.Microsecond)}
		scope, err := m.GrantScope(g, t0)
		if err != nil {
			t.Fatal(err)
		}
		return []doc{{m: scope}}
	}},
	// Without ext_proc the chain has no ext_proc and no route disables
	// it; without the HTTP service there are no routes to it.
	{out: "static-minimal.yaml", config: "minimal.yaml", render: staticBootstrap},
	// The addresses serve bound (port 0 resolved) win over the configured ones.
	{out: "clusters-bound.yaml", config: "airlock.yaml",
		bound:  Bound{ListenAddress: "127.0.0.1:10000", Authz: "127.0.0.1:40001", Proc: "127.0.0.1:40002", HTTP: "127.0.0.1:40003"},
		render: clusterDocs},
	// With listen.tls, airlock's gRPC clusters carry Envoy's side of mutual TLS.
	{out: "clusters-tls.yaml", config: "tls.yaml", render: clusterDocs},
}

func staticBootstrap(t *testing.T, m *Model) []doc {
	res, err := m.Static()
	if err != nil {
		t.Fatal(err)
	}
	b, err := StaticBootstrap(res, Node{ID: "airlock-gw", Cluster: "airlock"})
	if err != nil {
		t.Fatal(err)
	}
	return []doc{{m: b}}
}

func dynamicDocs(t *testing.T, m *Model) []doc {
	d, err := m.Dynamic()
	if err != nil {
		t.Fatal(err)
	}
	docs := []doc{{"listener", d.Listener}, {"base scope", d.BaseScope}}
	for _, c := range d.Clusters {
		docs = append(docs, doc{"cluster", c})
	}
	return docs
}

func clusterDocs(t *testing.T, m *Model) []doc {
	cs, err := m.clusters()
	if err != nil {
		t.Fatal(err)
	}
	var docs []doc
	for _, c := range cs {
		docs = append(docs, doc{"cluster", c})
	}
	return docs
}

func adsBootstrap(opts ADSOptions) func(*testing.T, *Model) []doc {
	return func(t *testing.T, _ *Model) []doc {
		b, err := ADSBootstrap(Node{ID: "gw-1", Cluster: "airlock"}, "airlock.example:18000", opts)
		if err != nil {
			t.Fatal(err)
		}
		return []doc{{m: b}}
	}
}

// renderDocs is a golden file's content: one unnamed document as is,
// named ones each under a "# name" line and ended by "---".
func renderDocs(t *testing.T, docs []doc) []byte {
	t.Helper()
	var out bytes.Buffer
	for _, d := range docs {
		y, err := YAML(d.m)
		if err != nil {
			t.Fatal(err)
		}
		if d.name == "" {
			out.Write(y)
			continue
		}
		out.WriteString("# " + d.name + "\n")
		out.Write(y)
		out.WriteString("---\n")
	}
	return out.Bytes()
}

func TestGolden(t *testing.T) {
	for _, tc := range goldens {
		t.Run(tc.out, func(t *testing.T) {
			var m *Model
			if tc.config != "" {
				var err error
				if m, err = NewModel(loadConfigFile(t, tc.config), tc.bound); err != nil {
					t.Fatal(err)
				}
			}
			docs := tc.render(t, m)
			out := renderDocs(t, docs)
			golden(t, tc.out, out)
			if again := renderDocs(t, tc.render(t, m)); !bytes.Equal(out, again) {
				t.Error("rendering is not deterministic")
			}
			for _, d := range docs {
				if err := ValidateDeep(d.m); err != nil {
					t.Errorf("%s: %v", d.name, err)
				}
				b, ok := d.m.(*bootstrapv3.Bootstrap)
				if !ok {
					continue
				}
				// What we print, Envoy can read back as the Bootstrap it claims to be.
				y, _ := YAML(b)
				back, err := ParseBootstrap(y)
				if err != nil {
					t.Fatal(err)
				}
				if !proto.Equal(b, back) {
					t.Error("bootstrap YAML does not parse back to the same proto")
				}
			}
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./envoy -update to create it)", err)
	}
	if !bytes.Equal(want, got) {
		t.Errorf("%s differs from the rendered output; run go test ./envoy -update and review the diff", path)
	}
}
