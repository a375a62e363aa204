package envoydriver

import (
	"context"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	tlsv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	discoveryv3 "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	matcherv3 "github.com/envoyproxy/go-control-plane/envoy/type/matcher/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/types"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"

	"github.com/airlock-mcp/airlock/envoy"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/mtls"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
)

// tlsWorld is airlock's side (a server certificate from serverCA, client
// certificates from clientCA allowed by SAN) and files for Envoy's side.
type tlsWorld struct {
	dir                  string
	serverCA, clientCA   *mtlstest.CA
	envoyCert, envoyKey  string // allowed client identity envoy.test
	rogueCert, rogueKey  string // signed by clientCA, SAN rogue.test (not allowed)
	serverCAFile         string
	otherCAFile          string // a CA that signed nothing here
	serverCert, serverKy string
	clientCAFile         string
}

func newTLSWorld(t *testing.T, serverSANs ...string) *tlsWorld {
	t.Helper()
	w := &tlsWorld{dir: t.TempDir(), serverCA: mtlstest.NewCA(t, "airlock server CA"), clientCA: mtlstest.NewCA(t, "gateway client CA")}
	write := func(name string, b []byte) string {
		p := filepath.Join(w.dir, name)
		mtlstest.WriteAtomic(t, p, b)
		return p
	}
	if len(serverSANs) == 0 {
		serverSANs = []string{"airlock.test"}
	}
	srv := w.serverCA.Issue(t, "airlock", time.Time{}, serverSANs...)
	w.serverCert, w.serverKy = write("server.crt", srv.CertPEM), write("server.key", srv.KeyPEM)
	w.clientCAFile = write("client-ca.crt", w.clientCA.PEM)
	w.serverCAFile = write("server-ca.crt", w.serverCA.PEM)
	w.otherCAFile = write("other-ca.crt", mtlstest.NewCA(t, "other CA").PEM)
	env := w.clientCA.Issue(t, "envoy", time.Time{}, "envoy.test")
	w.envoyCert, w.envoyKey = write("envoy.crt", env.CertPEM), write("envoy.key", env.KeyPEM)
	rogue := w.clientCA.Issue(t, "rogue", time.Time{}, "rogue.test")
	w.rogueCert, w.rogueKey = write("rogue.crt", rogue.CertPEM), write("rogue.key", rogue.KeyPEM)
	return w
}

// hello is what airlock's listener saw of a handshake.
type hello struct {
	SNI  string
	ALPN []string
}

// serverCreds are airlock's real mutual-TLS credentials (package mtls,
// allowed identity envoy.test), recording each ClientHello.
func (w *tlsWorld) serverCreds(t *testing.T) (credentials.TransportCredentials, func() []hello) {
	t.Helper()
	s, err := mtls.New(mtls.Config{CertFile: w.serverCert, KeyFile: w.serverKy, ClientCAFile: w.clientCAFile, AllowedIdentities: []string{"envoy.test"}}, mtls.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []hello
	conf := s.TLSConfig()
	next := conf.GetConfigForClient
	conf.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		seen = append(seen, hello{SNI: h.ServerName, ALPN: append([]string(nil), h.SupportedProtos...)})
		mu.Unlock()
		return next(h)
	}
	return credentials.NewTLS(conf), func() []hello {
		mu.Lock()
		defer mu.Unlock()
		return append([]hello(nil), seen...)
	}
}

// airlockSocket is the transport socket airlock renders for its clusters
// (envoy.AirlockTransportSocket) with Envoy's files from w.
func (w *tlsWorld) airlockSocket(t *testing.T, cert, key, ca, serverName string) *corev3.TransportSocket {
	t.Helper()
	var cfg config.Config
	cfg.Listen.TLS = config.ListenTLS{CertFile: w.serverCert, KeyFile: w.serverKy, ClientCAFile: w.clientCAFile, AllowedIdentities: []string{"envoy.test"},
		Envoy: config.EnvoyTLS{CertFile: cert, KeyFile: key, CAFile: ca, ServerName: serverName}}
	ts, err := envoy.AirlockTransportSocket(&cfg)
	if err != nil || ts == nil {
		t.Fatalf("AirlockTransportSocket: %v %v", ts, err)
	}
	return ts
}

// editSocket changes the UpstreamTlsContext inside ts.
func editSocket(t *testing.T, ts *corev3.TransportSocket, edit func(*tlsv3.UpstreamTlsContext)) *corev3.TransportSocket {
	t.Helper()
	var u tlsv3.UpstreamTlsContext
	if err := ts.GetTypedConfig().UnmarshalTo(&u); err != nil {
		t.Fatal(err)
	}
	edit(&u)
	return &corev3.TransportSocket{Name: ts.GetName(), ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &u)}}
}

func tlsCluster(name, addr string, ts *corev3.TransportSocket) *clusterv3.Cluster {
	c := staticCluster(name, addr)
	c.TransportSocket = ts
	return c
}

// TestTLSExtAuthz: ext_authz's envoy_grpc cluster with airlock's
// transport socket reaches airlock's mutual-TLS listener only when both
// sides check out; otherwise the Check never arrives and the filter
// answers 403 (failure_mode_allow is off), as Envoy's does when its
// connection to the authorization cluster fails.
func TestTLSExtAuthz(t *testing.T) {
	w := newTLSWorld(t, "airlock.test", "*.airlock.test")
	good := w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test")
	for name, tc := range map[string]struct {
		ts       *corev3.TransportSocket
		want     int
		wantSNI  string
		wantALPN []string
	}{
		"airlock's socket": {ts: good, want: 200, wantSNI: "airlock.test", wantALPN: []string{"h2"}},
		"server name under the certificate's wildcard": {
			ts: w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "ns.airlock.test"), want: 200, wantSNI: "ns.airlock.test", wantALPN: []string{"h2"}},
		"server name upper case (DNS names match ignoring case)": {
			ts: w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "AIRLOCK.test"), want: 200, wantSNI: "AIRLOCK.test", wantALPN: []string{"h2"}},
		"server SAN not the expected name": {
			ts: w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "attacker.test"), want: 403, wantSNI: "attacker.test", wantALPN: []string{"h2"}},
		"wildcard covers one label only": {
			ts: w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "a.b.airlock.test"), want: 403, wantSNI: "a.b.airlock.test", wantALPN: []string{"h2"}},
		"server certificate from another CA": {
			ts: w.airlockSocket(t, w.envoyCert, w.envoyKey, w.otherCAFile, "airlock.test"), want: 403, wantSNI: "airlock.test", wantALPN: []string{"h2"}},
		"no client certificate: airlock refuses": {
			ts: editSocket(t, good, func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.TlsCertificates = nil }), want: 403, wantSNI: "airlock.test", wantALPN: []string{"h2"}},
		"client identity not allowed: airlock refuses": {
			ts: w.airlockSocket(t, w.rogueCert, w.rogueKey, w.serverCAFile, "airlock.test"), want: 403, wantSNI: "airlock.test", wantALPN: []string{"h2"}},
		"no ALPN: gRPC servers insist on h2": {
			ts: editSocket(t, good, func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.AlpnProtocols = nil }), want: 403, wantSNI: "airlock.test"},
		"no sni: none is sent, the SAN is still checked": {
			ts: editSocket(t, good, func(u *tlsv3.UpstreamTlsContext) { u.Sni = "" }), want: 200, wantALPN: []string{"h2"}},
		"TLS 1.3 minimum": {
			ts: editSocket(t, good, func(u *tlsv3.UpstreamTlsContext) {
				u.CommonTlsContext.TlsParams = &tlsv3.TlsParameters{TlsMinimumProtocolVersion: tlsv3.TlsParameters_TLSv1_3, TlsMaximumProtocolVersion: tlsv3.TlsParameters_TLSv1_3}
			}), want: 200, wantSNI: "airlock.test", wantALPN: []string{"h2"}},
	} {
		t.Run(name, func(t *testing.T) {
			creds, hellos := w.serverCreds(t)
			var mu sync.Mutex
			var peers []*peer.Peer
			a := &authzServer{check: func(ctx context.Context, r *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				p, _ := peer.FromContext(ctx)
				mu.Lock()
				peers = append(peers, p)
				mu.Unlock()
				return allow(ctx, r)
			}}
			addr := serveGRPCCreds(t, creds, func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, a) })
			up := newUpstream(t, nil)
			d := startDriver(t, Config{
				Listener: listener(t, routeConfig(prefixRoute("/", "up")), authzFilter(t, authzConfigFor("authz"))),
				Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), tlsCluster("authz", addr, tc.ts)},
			})
			got := do(t, d, "GET", "/", "", nil)
			if got.Status != tc.want {
				t.Fatalf("status %d, want %d (%s)", got.Status, tc.want, got.Body)
			}
			if n := len(a.requests()); (n > 0) != (tc.want == 200) {
				t.Errorf("airlock got %d Check requests", n)
			}
			if n := len(up.requests()); (n > 0) != (tc.want == 200) {
				t.Errorf("upstream got %d requests", n)
			}
			hs := hellos()
			if len(hs) == 0 {
				t.Fatal("no TLS handshake reached airlock")
			}
			if diff := cmp.Diff(hello{SNI: tc.wantSNI, ALPN: tc.wantALPN}, hs[0]); diff != "" {
				t.Errorf("ClientHello (-want +got):\n%s", diff)
			}
			if tc.want != 200 {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			ti, ok := peers[0].AuthInfo.(credentials.TLSInfo)
			if !ok {
				t.Fatalf("Check arrived without TLS: %T", peers[0].AuthInfo)
			}
			if ids := mtls.PeerIdentities(ti.State); !cmp.Equal(ids, []string{"envoy.test"}) {
				t.Errorf("client identities %v, want [envoy.test]", ids)
			}
			wantVersion := uint16(tls.VersionTLS12) // Envoy's client maximum by default
			if name == "TLS 1.3 minimum" {
				wantVersion = tls.VersionTLS13
			}
			if ti.State.Version != wantVersion {
				t.Errorf("TLS version %x, want %x", ti.State.Version, wantVersion)
			}
		})
	}
}

func serveGRPCCreds(t *testing.T, creds credentials.TransportCredentials, register func(*grpc.Server)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(grpc.Creds(creds))
	register(s)
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

// TestTLSExtProc: the ext_proc filter's stream goes through the TLS
// cluster as well.
func TestTLSExtProc(t *testing.T) {
	w := newTLSWorld(t)
	creds, _ := w.serverCreds(t)
	p := &procServer{handle: serveEach(one(echoResponse))}
	addr := serveGRPCCreds(t, creds, func(s *grpc.Server) { procsvc.RegisterExternalProcessorServer(s, p) })
	up := newUpstream(t, nil)
	for name, tc := range map[string]struct {
		ts   *corev3.TransportSocket
		want int
	}{
		"allowed":     {w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test"), 200},
		"not allowed": {w.airlockSocket(t, w.rogueCert, w.rogueKey, w.serverCAFile, "airlock.test"), 500},
	} {
		t.Run(name, func(t *testing.T) {
			before := len(p.received())
			d := startDriver(t, Config{
				Listener: listener(t, routeConfig(prefixRoute("/", "up")), procFilter(t, procConfigFor("proc", nil))),
				Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), tlsCluster("proc", addr, tc.ts)},
			})
			got := do(t, d, "GET", "/", "", nil)
			if got.Status != tc.want {
				t.Fatalf("status %d, want %d (%s)", got.Status, tc.want, got.Body)
			}
			if opened := len(p.received()) > before; opened != (tc.want == 200) {
				t.Errorf("ext_proc stream opened = %v", opened)
			}
		})
	}
}

// TestTLSADSBootstrap: ConnectBootstrap dials the ADS cluster through its
// transport socket; a server whose certificate lacks the expected SAN
// never gets a subscription.
func TestTLSADSBootstrap(t *testing.T) {
	w := newTLSWorld(t)
	creds, _ := w.serverCreds(t)
	up := newUpstream(t, nil)
	c := cache.NewSnapshotCache(false, cache.IDHash{}, nil)
	setSnapshot(t, c, "1", map[resource.Type][]types.Resource{
		resource.ClusterType:  {staticCluster("a", up.addr())},
		resource.ListenerType: {listener(t, nil)},
		resource.RouteType:    {namedRC("routes", prefixRoute("/", "a"))},
	})
	var mu sync.Mutex
	streams := 0
	cb := server.CallbackFuncs{StreamOpenFunc: func(context.Context, int64, string) error {
		mu.Lock()
		streams++
		mu.Unlock()
		return nil
	}}
	addr := serveGRPCCreds(t, creds, func(s *grpc.Server) {
		discoveryv3.RegisterAggregatedDiscoveryServiceServer(s, server.NewServer(context.Background(), c, cb))
	})
	boot := func(ts *corev3.TransportSocket) *bootstrapv3.Bootstrap {
		return &bootstrapv3.Bootstrap{
			Node: &corev3.Node{Id: "node-1"},
			DynamicResources: &bootstrapv3.Bootstrap_DynamicResources{AdsConfig: &corev3.ApiConfigSource{
				ApiType: corev3.ApiConfigSource_GRPC, TransportApiVersion: corev3.ApiVersion_V3,
				GrpcServices: []*corev3.GrpcService{grpcService("xds", 0)}}},
			StaticResources: &bootstrapv3.Bootstrap_StaticResources{Clusters: []*clusterv3.Cluster{tlsCluster("xds", addr, ts)}},
		}
	}

	t.Run("wrong server SAN", func(t *testing.T) {
		a, err := ConnectBootstrap(boot(w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "xds.other.test")), ADSOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel()
		if _, err := a.WaitReady(ctx); err == nil {
			t.Fatal("configured over a connection to a server without the expected SAN")
		}
		if err := a.Err(); err == nil || !strings.Contains(err.Error(), "SAN matcher") {
			t.Errorf("stream error %v, want the SAN matcher failure", err)
		}
		mu.Lock()
		defer mu.Unlock()
		if streams != 0 {
			t.Errorf("%d ADS streams opened", streams)
		}
	})
	t.Run("airlock's socket", func(t *testing.T) {
		a, err := ConnectBootstrap(boot(w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test")), ADSOptions{Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		d, err := a.WaitReady(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got := do(t, d, "GET", "/", "", nil); got.Status != 200 || len(up.requests()) != 1 {
			t.Fatalf("through the ADS configuration: %d", got.Status)
		}
	})
}

// TestTLSRefused: what the stand-in does not implement is an error naming
// it (fail closed), as are the configurations Envoy itself rejects.
func TestTLSRefused(t *testing.T) {
	w := newTLSWorld(t)
	good := w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test")
	edit := func(f func(*tlsv3.UpstreamTlsContext)) *corev3.TransportSocket { return editSocket(t, good, f) }
	file := func(p string) *corev3.DataSource {
		return &corev3.DataSource{Specifier: &corev3.DataSource_Filename{Filename: p}}
	}
	empty := filepath.Join(w.dir, "empty.pem")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		ts      *corev3.TransportSocket
		matches bool // transport_socket_matches instead
		want    string
	}{
		"no typed_config": {ts: &corev3.TransportSocket{Name: "envoy.transport_sockets.tls"}, want: "typed_config is required"},
		"another socket":  {ts: &corev3.TransportSocket{Name: "x", ConfigType: &corev3.TransportSocket_TypedConfig{TypedConfig: mustAny(t, &tlsv3.DownstreamTlsContext{})}}, want: "DownstreamTlsContext is not supported"},
		"socket matches":  {matches: true, want: "transport_socket_matches is not supported"},
		"cipher suites":   {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.TlsParams.CipherSuites = []string{"AES128-SHA"} }), want: "tls_params: cipher_suites not supported"},
		"sds certificate": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.TlsCertificateSdsSecretConfigs = []*tlsv3.SdsSecretConfig{{Name: "s"}}
		}), want: "tls_certificate_sds_secret_configs not supported"},
		"no validation": {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.ValidationContextType = nil }), want: "validation_context.trusted_ca is required"},
		"spki pin": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.GetValidationContext().VerifyCertificateSpki = []string{strings.Repeat("A", 43) + "="}
		}), want: "verify_certificate_spki not supported"},
		"regex SAN matcher": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.GetValidationContext().MatchTypedSubjectAltNames[0].Matcher = &matcherv3.StringMatcher{MatchPattern: &matcherv3.StringMatcher_SafeRegex{SafeRegex: &matcherv3.RegexMatcher{Regex: ".*"}}}
		}), want: "safe_regex not supported"},
		"other-name SAN": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.GetValidationContext().MatchTypedSubjectAltNames[0].SanType = tlsv3.SubjectAltNameMatcher_OTHER_NAME
		}), want: "san_type OTHER_NAME is not supported"},
		"two certificates": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			c := u.CommonTlsContext.TlsCertificates
			u.CommonTlsContext.TlsCertificates = append(c, c[0])
		}), want: "Multiple TLS certificates are not supported"},
		"key missing": {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.TlsCertificates[0].PrivateKey = nil }), want: "incomplete certificate"},
		"key file missing": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.TlsCertificates[0].PrivateKey = file(filepath.Join(w.dir, "nope.key"))
		}), want: "nope.key: no such file"},
		"key of another certificate": {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.TlsCertificates[0].PrivateKey = file(w.rogueKey) }), want: "private key does not match public key"},
		"empty CA file":              {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.CommonTlsContext.GetValidationContext().TrustedCa = file(empty) }), want: "is empty"},
		"CA file not PEM": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.GetValidationContext().TrustedCa = file(w.envoyKey)
		}), want: "Failed to load trusted CA certificates"},
		"min above max": {ts: edit(func(u *tlsv3.UpstreamTlsContext) {
			u.CommonTlsContext.TlsParams.TlsMinimumProtocolVersion = tlsv3.TlsParameters_TLSv1_3
		}), want: "above tls_maximum_protocol_version"},
		"sni with NUL":  {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.Sni = "a\x00b" }), want: "NULL-byte"},
		"renegotiation": {ts: edit(func(u *tlsv3.UpstreamTlsContext) { u.AllowRenegotiation = true }), want: "allow_renegotiation not supported"},
	} {
		t.Run(name, func(t *testing.T) {
			c := tlsCluster("authz", "127.0.0.1:1", tc.ts)
			if tc.matches {
				c.TransportSocketMatches = []*clusterv3.Cluster_TransportSocketMatch{{Name: "m", TransportSocket: good}}
			}
			_, err := New(Config{
				Listener: listener(t, routeConfig(prefixRoute("/", "authz")), authzFilter(t, authzConfigFor("authz"))),
				Clusters: []*clusterv3.Cluster{c},
			}, Options{})
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v\nwant it to say %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("error quotes key material: %v", err)
			}
		})
	}
}

// TestTLSRouterRefusesTLSCluster: the router's HTTP/1 upstream has no TLS;
// a route to a TLS cluster fails closed with 503 instead of sending
// plaintext.
func TestTLSRouterRefusesTLSCluster(t *testing.T) {
	w := newTLSWorld(t)
	up := newUpstream(t, nil)
	d := startDriver(t, Config{
		Listener: listener(t, routeConfig(prefixRoute("/", "up"))),
		Clusters: []*clusterv3.Cluster{tlsCluster("up", up.addr(), w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test"))},
	})
	if got := do(t, d, "GET", "/", "", nil); got.Status != 503 {
		t.Fatalf("status %d, want 503", got.Status)
	}
	if n := len(up.requests()); n != 0 {
		t.Fatalf("plaintext request reached a TLS cluster's endpoint (%d)", n)
	}
}

// TestTLSDNSNameMatch pins Utility::dnsNameMatch (source/common/tls/utility.cc).
func TestTLSDNSNameMatch(t *testing.T) {
	for _, tc := range []struct {
		name, pattern string
		want          bool
	}{
		{"airlock.test", "airlock.test", true},
		{"Airlock.TEST", "airlock.test", true},
		{"a.airlock.test", "*.airlock.test", true},
		{"airlock.test", "*.airlock.test", false},
		{"a.b.airlock.test", "*.airlock.test", false},
		{"api-1.airlock.test", "api-*.airlock.test", true},
		{"api.airlock.test", "api-*.airlock.test", false},
		{"xn--a.airlock.test", "xn--*.airlock.test", false},
		{"a.airlock.test", "a.*.test", false},
		{"airlock", "*", false},
		{"a.airlock.test", "**.airlock.test", false},
		{"airlock.test.", "airlock.test", false},
	} {
		if got := dnsNameMatch(tc.name, tc.pattern); got != tc.want {
			t.Errorf("dnsNameMatch(%q, %q) = %v, want %v", tc.name, tc.pattern, got, tc.want)
		}
	}
}

// TestTLSPoolKey: connections are shared only between clusters with the
// same TLS configuration and files.
func TestTLSPoolKey(t *testing.T) {
	w := newTLSWorld(t)
	compile := func(ts *corev3.TransportSocket) string {
		t.Helper()
		u, err := compileTransportSocket(ts)
		if err != nil {
			t.Fatal(err)
		}
		return u.key
	}
	a := compile(w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test"))
	if b := compile(w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test")); a != b {
		t.Error("the same configuration and files gave different pool keys")
	}
	if b := compile(w.airlockSocket(t, w.rogueCert, w.rogueKey, w.serverCAFile, "airlock.test")); a == b {
		t.Error("another client certificate shares the pool key")
	}
	// Rotation: the same paths with new contents.
	rotated := w.clientCA.Issue(t, "envoy", time.Time{}, "envoy.test")
	mtlstest.WriteAtomic(t, w.envoyCert, rotated.CertPEM)
	mtlstest.WriteAtomic(t, w.envoyKey, rotated.KeyPEM)
	if b := compile(w.airlockSocket(t, w.envoyCert, w.envoyKey, w.serverCAFile, "airlock.test")); a == b {
		t.Error("a rotated certificate file shares the pool key")
	}
}
