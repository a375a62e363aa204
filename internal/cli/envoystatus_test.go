package cli_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/cli"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/xds"
)

func buildNode(id string, major, minor, patch uint32) *corev3.Node {
	return &corev3.Node{Id: id, Cluster: "airlock", UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{
			Version: &typev3.SemanticVersion{MajorNumber: major, MinorNumber: minor, Patch: patch}}}}
}

// startXDS is a real xds.Server on loopback gRPC, its status on an HTTP
// server mounted as serve mounts it.
func startXDS(t *testing.T) (*xds.Server, string, string) {
	t.Helper()
	src := fmt.Sprintf(`
public_url: http://127.0.0.1:10000
listen: {authz: "127.0.0.1:1", http: "", proc: "", xds: "127.0.0.1:0"}
issuers: [{name: test, url: "https://issuer.test"}]
targets: [{name: github, upstream: "http://127.0.0.1:2/mcp"}]
policy: {dir: %q}
`, t.TempDir())
	cfg, err := config.Parse(strings.NewReader(src), "test.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, err := envoy.NewModel(cfg, envoy.Bound{ListenAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := xds.New(m, xds.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer()
	srv.Register(g)
	go func() { _ = g.Serve(ln) }()
	t.Cleanup(g.Stop)
	mux := http.NewServeMux()
	mux.Handle("GET "+xds.StatusPath, srv.StatusHandler())
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return srv, ln.Addr().String(), hs.URL
}

func adsClient(t *testing.T, addr string) discovery.AggregatedDiscoveryServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return discovery.NewAggregatedDiscoveryServiceClient(conn)
}

// TestEnvoyStatus runs `airlock envoy status` against a real xDS server
// with go-control-plane clients connected over gRPC: a delta Envoy 1.37
// in sync, a SotW Envoy 1.36 that rejected the scoped routes, and an
// Envoy 1.32 refused for being below the floor.
func TestEnvoyStatus(t *testing.T) {
	srv, addr, url := startXDS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	d, err := adsClient(t, addr).DeltaAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	node := buildNode("gw-delta", 1, 37, 0)
	for _, typ := range []string{resource.ClusterType, resource.ListenerType, resource.ScopedRouteType} {
		if err := d.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: typ}); err != nil {
			t.Fatal(err)
		}
		r, err := d.Recv()
		if err != nil {
			t.Fatal(err)
		}
		if err := d.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: r.GetTypeUrl(), ResponseNonce: r.GetNonce()}); err != nil {
			t.Fatal(err)
		}
	}

	s, err := adsClient(t, addr).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	snode := buildNode("gw-sotw", 1, 36, 0)
	if err := s.Send(&discovery.DiscoveryRequest{Node: snode, TypeUrl: resource.ScopedRouteType}); err != nil {
		t.Fatal(err)
	}
	r, err := s.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(&discovery.DiscoveryRequest{Node: snode, TypeUrl: resource.ScopedRouteType, ResponseNonce: r.GetNonce(),
		ErrorDetail: &rpcstatus.Status{Code: 3, Message: "route: unknown cluster mcp_github"}}); err != nil {
		t.Fatal(err)
	}

	old, err := adsClient(t, addr).StreamAggregatedResources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Send(&discovery.DiscoveryRequest{Node: buildNode("gw-old", 1, 32, 3), TypeUrl: resource.ListenerType}); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Recv(); err == nil || !strings.Contains(err.Error(), "below airlock's floor") {
		t.Fatalf("Envoy 1.32.3 not refused: %v", err)
	}

	// Every answer above reached the server before the status is read.
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := srv.Status()
		if len(st.Streams) == 2 && len(st.Streams[0].Types) == 3 && st.Streams[0].Types[2].ACKs == 1 && st.Streams[1].Types[0].NACKs == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status never showed both clients: %+v", st)
		}
		time.Sleep(5 * time.Millisecond)
	}

	var out, errOut bytes.Buffer
	if code := run([]string{"envoy", "status", "--server", url}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(out.String(), "\n")
	want := []struct {
		prefix string
		fields []string
	}{
		{"Envoy floor", []string{xds.MinEnvoyVersion}},
		{"NODE", []string{"VERSION", "MODE", "LISTENERS", "CLUSTERS", "SCOPED ROUTES", "BEHIND", "LAST NACK"}},
		{"gw-delta", []string{"1.37.0", "delta", "SYNCED  ", "0 "}},
		{"gw-sotw", []string{"1.36.0", "sotw", "-", "NACKED", "scoped_routes", "unknown cluster mcp_github"}},
		{"REFUSED NODE", []string{"REASON"}},
		{"gw-old", []string{"1.32.3", "Envoy 1.32.3 is below airlock's floor 1.34.0"}},
	}
	for _, w := range want {
		var line string
		for _, l := range lines {
			if strings.HasPrefix(l, w.prefix) {
				line = l
			}
		}
		if line == "" {
			t.Errorf("no line %q in:\n%s", w.prefix, out.String())
			continue
		}
		for _, f := range w.fields {
			if !strings.Contains(line, f) {
				t.Errorf("line %q lacks %q", line, f)
			}
		}
	}
	if strings.Count(lines[2], "SYNCED") != 3 {
		t.Errorf("gw-delta is not in sync on all three types: %q", lines[2])
	}

	out.Reset()
	if code := run([]string{"envoy", "status", "--server", url, "-o", "json"}, &out, &errOut); code != 0 {
		t.Fatalf("-o json: exit %d: %s", code, errOut.String())
	}
	var st xds.Status
	if err := json.Unmarshal(out.Bytes(), &st); err != nil {
		t.Fatalf("-o json is not the status: %v\n%s", err, out.String())
	}
	if len(st.Streams) != 2 || st.Streams[1].Types[0].LastNACK == "" || len(st.Refused) != 1 {
		t.Errorf("json status = %+v", st)
	}
}

func TestEnvoyStatusErrors(t *testing.T) {
	notXDS := httptest.NewServer(http.NotFoundHandler())
	defer notXDS.Close()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"bad output", []string{"envoy", "status", "-o", "yaml"}, cli.ExitUsage, `--output "yaml"`},
		{"bad server", []string{"envoy", "status", "--server", "127.0.0.1:8080"}, cli.ExitError, "want an http:// or https:// URL"},
		{"xds off", []string{"envoy", "status", "--server", notXDS.URL}, cli.ExitError, "is xDS on (listen.xds)"},
		{"arguments", []string{"envoy", "status", "gw-1"}, cli.ExitUsage, "takes no arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := run(tc.args, &out, &errOut); code != tc.code || !strings.Contains(errOut.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, errOut.String(), tc.code, tc.want)
			}
		})
	}
}
