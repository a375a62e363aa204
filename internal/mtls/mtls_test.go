package mtls

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"math/big"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
	"github.com/airlock-mcp/airlock/internal/syncbuf"
)

const (
	serverName  = "airlock.airlock-system.svc"
	gatewaySPID = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway"
)

// startGRPC serves gRPC health on loopback with the server's credentials.
func startGRPC(t *testing.T, s *Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := grpc.NewServer(grpc.Creds(s.Credentials()))
	healthpb.RegisterHealthServer(g, health.NewServer())
	go g.Serve(l)
	t.Cleanup(g.Stop)
	return l.Addr().String()
}

// call makes one health check over a new connection and returns the
// serial of the certificate the server presented.
func call(t *testing.T, addr string, creds credentials.TransportCredentials) (*big.Int, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var p peer.Peer
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
		return nil, err
	}
	return p.AuthInfo.(credentials.TLSInfo).State.PeerCertificates[0].SerialNumber, nil
}

func clientCreds(t *testing.T, serverCA *mtlstest.CA, cert *mtlstest.Leaf) credentials.TransportCredentials {
	t.Helper()
	return credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, serverName, cert))
}

// serverFiles writes a server cert, key and client CA into a temp dir.
func serverFiles(t *testing.T, srv mtlstest.Leaf, clientCA *mtlstest.CA) Config {
	f := mtlstest.WriteServerFiles(t, srv, clientCA)
	return Config{CertFile: f.Cert, KeyFile: f.Key, ClientCAFile: f.ClientCA}
}

// Over real loopback gRPC: only a client certificate from the client CA
// carrying an allowed identity gets an answer.
func TestHandshakeOverGRPC(t *testing.T) {
	serverCA, clientCA, otherCA := mtlstest.NewCA(t, "server-ca"), mtlstest.NewCA(t, "client-ca"), mtlstest.NewCA(t, "other-ca")
	day := time.Now().Add(24 * time.Hour)
	cfg := serverFiles(t, serverCA.Issue(t, "airlock", day, serverName), clientCA)
	cfg.AllowedIdentities = []string{gatewaySPID, "envoy.gateway.internal", "spiffe://cluster.local/ns/gateways/sa/*"}
	logs := &syncbuf.Buffer{}
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	addr := startGRPC(t, s)

	cases := []struct {
		name   string
		creds  credentials.TransportCredentials
		wantOK bool
	}{
		{"SPIFFE ID allowed", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, gatewaySPID))), true},
		{"DNS SAN allowed (case-insensitive)", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "Envoy.Gateway.Internal"))), true},
		{"SPIFFE path pattern", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "spiffe://cluster.local/ns/gateways/sa/edge"))), true},
		{"one allowed SAN among others", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "spiffe://cluster.local/ns/x/sa/y", gatewaySPID))), true},
		{"wrong SPIFFE ID", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "spiffe://cluster.local/ns/default/sa/attacker"))), false},
		{"SPIFFE ID of another trust domain", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "spiffe://evil.example/ns/istio-system/sa/istio-ingressgateway"))), false},
		{"pattern is a path prefix, not a string prefix", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, "spiffe://cluster.local/ns/gateways/sa"))), false},
		{"allowed name only in the common name", clientCreds(t, serverCA, ptr(clientCA.Issue(t, "envoy.gateway.internal", day, "other.internal"))), false},
		{"allowed SAN but another CA", clientCreds(t, serverCA, ptr(otherCA.Issue(t, "gw", day, gatewaySPID))), false},
		{"no client certificate", clientCreds(t, serverCA, nil), false},
		{"plaintext", insecure.NewCredentials(), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := call(t, addr, tc.creds)
			if (err == nil) != tc.wantOK {
				t.Fatalf("call error %v, want ok=%v", err, tc.wantOK)
			}
		})
	}
	if l := logs.String(); !strings.Contains(l, "spiffe://cluster.local/ns/default/sa/attacker") || !strings.Contains(l, "no allowed identity") {
		t.Errorf("a refused identity is not logged with its SANs:\n%s", l)
	}
}

func ptr[T any](v T) *T { return &v }

// TLS 1.1 and below are refused; 1.3 is what a modern client gets.
func TestProtocolVersions(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "server-ca"), mtlstest.NewCA(t, "client-ca")
	day := time.Now().Add(24 * time.Hour)
	cfg := serverFiles(t, serverCA.Issue(t, "airlock", day, serverName), clientCA)
	cfg.AllowedIdentities = []string{gatewaySPID}
	s, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := tls.Listen("tcp", "127.0.0.1:0", s.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { _ = c.(*tls.Conn).Handshake(); c.Close() }()
		}
	}()
	pool := serverCA.Pool()
	cert := clientCA.Issue(t, "gw", day, gatewaySPID).TLS(t)
	for _, tc := range []struct {
		max     uint16
		want    uint16
		wantErr bool
	}{{tls.VersionTLS11, 0, true}, {tls.VersionTLS12, tls.VersionTLS12, false}, {tls.VersionTLS13, tls.VersionTLS13, false}} {
		c, err := tls.Dial("tcp", l.Addr().String(), &tls.Config{RootCAs: pool, ServerName: serverName, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS10, MaxVersion: tc.max, NextProtos: []string{"h2"}})
		if tc.wantErr {
			if err == nil {
				c.Close()
				t.Errorf("max version %x: handshake succeeded", tc.max)
			}
			continue
		}
		if err != nil {
			t.Fatalf("max version %x: %v", tc.max, err)
		}
		if got := c.ConnectionState().Version; got != tc.want {
			t.Errorf("negotiated %x, want %x", got, tc.want)
		}
		c.Close()
	}
}

// New handshakes follow the files: a rotated server certificate and a
// rotated client CA are picked up; a broken file keeps the last good set
// and is logged without its contents.
func TestRotation(t *testing.T) {
	serverCA, clientCA1, clientCA2 := mtlstest.NewCA(t, "server-ca"), mtlstest.NewCA(t, "client-ca-1"), mtlstest.NewCA(t, "client-ca-2")
	day := time.Now().Add(24 * time.Hour)
	srv1 := serverCA.Issue(t, "airlock", day, serverName)
	cfg := serverFiles(t, srv1, clientCA1)
	cfg.AllowedIdentities = []string{gatewaySPID}
	logs := &syncbuf.Buffer{}
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), CheckInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	addr := startGRPC(t, s)
	gw1 := clientCreds(t, serverCA, ptr(clientCA1.Issue(t, "gw", day, gatewaySPID)))
	gw2 := clientCreds(t, serverCA, ptr(clientCA2.Issue(t, "gw", day, gatewaySPID)))

	got, err := call(t, addr, gw1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Cmp(srv1.Serial) != 0 {
		t.Fatalf("served serial %v, want %v", got, srv1.Serial)
	}
	if _, err := call(t, addr, gw2); err == nil {
		t.Fatal("a client of the not yet trusted CA was let in")
	}

	// Rotate the server certificate and the client CA.
	srv2 := serverCA.Issue(t, "airlock", day, serverName)
	mtlstest.WriteAtomic(t, cfg.CertFile, srv2.CertPEM)
	mtlstest.WriteAtomic(t, cfg.KeyFile, srv2.KeyPEM)
	mtlstest.WriteAtomic(t, cfg.ClientCAFile, clientCA2.PEM)
	if got, err = call(t, addr, gw2); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if got.Cmp(srv2.Serial) != 0 {
		t.Fatalf("after rotation served serial %v, want %v", got, srv2.Serial)
	}
	if _, err := call(t, addr, gw1); err == nil {
		t.Fatal("a client of the rotated-out CA was still let in")
	}

	// A half-done rotation (new cert, old key) and garbage keep the good set.
	srv3 := serverCA.Issue(t, "airlock", day, serverName)
	mtlstest.WriteAtomic(t, cfg.CertFile, srv3.CertPEM)
	if got, err = call(t, addr, gw2); err != nil || got.Cmp(srv2.Serial) != 0 {
		t.Fatalf("mismatched cert/key: serial %v err %v, want the previous %v", got, err, srv2.Serial)
	}
	secret := "-----BEGIN PRIVATE KEY-----\nTOPSECRETKEYMATERIAL\n-----END PRIVATE KEY-----\n"
	mtlstest.WriteAtomic(t, cfg.KeyFile, []byte(secret))
	if got, err = call(t, addr, gw2); err != nil || got.Cmp(srv2.Serial) != 0 {
		t.Fatalf("garbage key: serial %v err %v, want the previous %v", got, err, srv2.Serial)
	}
	l := logs.String()
	if !strings.Contains(l, "cannot be used") || !strings.Contains(l, "key_file") {
		t.Errorf("the broken rotation is not logged:\n%s", l)
	}
	if strings.Contains(l, "TOPSECRET") || strings.Contains(l, "BEGIN") {
		t.Errorf("the log quotes a key file:\n%s", l)
	}
	// Completing the rotation takes it.
	mtlstest.WriteAtomic(t, cfg.KeyFile, srv3.KeyPEM)
	if got, err = call(t, addr, gw2); err != nil || got.Cmp(srv3.Serial) != 0 {
		t.Fatalf("completed rotation: serial %v err %v, want %v", got, err, srv3.Serial)
	}
	if s.Certificate().SerialNumber.Cmp(srv3.Serial) != 0 {
		t.Errorf("Certificate() = %v", s.Certificate().SerialNumber)
	}
}

// The files are looked at no more often than the interval.
func TestCheckInterval(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "server-ca"), mtlstest.NewCA(t, "client-ca")
	day := time.Now().Add(24 * time.Hour)
	srv1 := serverCA.Issue(t, "airlock", day, serverName)
	cfg := serverFiles(t, srv1, clientCA)
	cfg.AllowedIdentities = []string{gatewaySPID}
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, err := New(cfg, Options{CheckInterval: time.Minute, Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	addr := startGRPC(t, s)
	gw := clientCreds(t, serverCA, ptr(clientCA.Issue(t, "gw", day, gatewaySPID)))
	srv2 := serverCA.Issue(t, "airlock", day, serverName)
	mtlstest.WriteAtomic(t, cfg.CertFile, srv2.CertPEM)
	mtlstest.WriteAtomic(t, cfg.KeyFile, srv2.KeyPEM)
	if got, err := call(t, addr, gw); err != nil || got.Cmp(srv1.Serial) != 0 {
		t.Fatalf("within the interval: serial %v err %v, want the old %v", got, err, srv1.Serial)
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if got, err := call(t, addr, gw); err != nil || got.Cmp(srv2.Serial) != 0 {
		t.Fatalf("after the interval: serial %v err %v, want the new %v", got, err, srv2.Serial)
	}
}

func TestNewErrorsNameTheField(t *testing.T) {
	serverCA, clientCA := mtlstest.NewCA(t, "server-ca"), mtlstest.NewCA(t, "client-ca")
	day := time.Now().Add(24 * time.Hour)
	good := serverCA.Issue(t, "airlock", day, serverName)
	other := serverCA.Issue(t, "airlock", day, serverName)
	expired := serverCA.Issue(t, "airlock", time.Now().Add(-time.Minute), serverName)
	cases := []struct {
		name  string
		setup func(c *Config)
		want  string
	}{
		{"missing cert", func(c *Config) { c.CertFile += ".nope" }, "cert_file: open"},
		{"missing key", func(c *Config) { c.KeyFile += ".nope" }, "key_file: open"},
		{"missing CA", func(c *Config) { c.ClientCAFile += ".nope" }, "client_ca_file: open"},
		{"key of another cert", func(c *Config) { mtlstest.WriteAtomic(t, c.KeyFile, other.KeyPEM) }, "not a matching PEM certificate and key"},
		{"CA not PEM", func(c *Config) { mtlstest.WriteAtomic(t, c.ClientCAFile, []byte("hello")) }, "client_ca_file"},
		{"expired", func(c *Config) {
			mtlstest.WriteAtomic(t, c.CertFile, expired.CertPEM)
			mtlstest.WriteAtomic(t, c.KeyFile, expired.KeyPEM)
		}, "certificate expired"},
		{"no identities", func(c *Config) { c.AllowedIdentities = nil }, "allowed_identities: name at least one"},
		{"no files", func(c *Config) { *c = Config{AllowedIdentities: c.AllowedIdentities} }, "cert_file: is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := serverFiles(t, good, clientCA)
			cfg.AllowedIdentities = []string{gatewaySPID}
			tc.setup(&cfg)
			_, err := New(cfg, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one containing %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "BEGIN") {
				t.Errorf("error quotes a PEM file: %v", err)
			}
		})
	}
}

func TestValidateIdentities(t *testing.T) {
	cases := []struct {
		id      string
		wantErr string
	}{
		{gatewaySPID, ""},
		{"spiffe://cluster.local/ns/istio-system/sa/*", ""},
		{"envoy-gateway.envoy-gateway-system.svc.cluster.local", ""},
		{"spiffe://cluster.local/*", "whole trust domain"},
		{"spiffe://cluster.local/ns/*/sa/gw", "final /*"},
		{"*.example.com", "neither a DNS name"},
		{"gate way", "neither a DNS name"},
		{"spiffe://", "not a URI SAN"},
		{"spiffe://td/x?y=1", "not a URI SAN"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			err := ValidateConfig(Config{CertFile: "a", KeyFile: "b", ClientCAFile: "c", AllowedIdentities: []string{tc.id}})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var fe *FieldError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &fe) || fe.Field != "allowed_identities[0]" {
				t.Fatalf("error %v, want a allowed_identities[0] error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestLoopback(t *testing.T) {
	cases := []struct {
		addr string
		want bool
	}{
		{"127.0.0.1:9001", true},
		{"127.5.6.7:9001", true},
		{"[::1]:9001", true},
		{"localhost:9001", true},
		{"LOCALHOST:9001", true},
		{":9001", false},
		{"0.0.0.0:9001", false},
		{"[::]:9001", false},
		{"10.1.2.3:9001", false},
		{"[fe80::1]:9001", false},
	}
	var got, want []bool
	for _, tc := range cases {
		ok, err := Loopback(context.Background(), tc.addr, nil)
		if err != nil {
			t.Fatalf("%s: %v", tc.addr, err)
		}
		lit, known := LoopbackLiteral(tc.addr)
		if !known || lit != ok {
			t.Errorf("%s: LoopbackLiteral = %v,%v; Loopback = %v", tc.addr, lit, known, ok)
		}
		got, want = append(got, ok), append(want, tc.want)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Loopback (-want +got):\n%s", d)
	}
	if _, known := LoopbackLiteral("airlock.internal:9001"); known {
		t.Error("a host name needs a lookup")
	}
	if _, err := Loopback(context.Background(), "no-such-host.invalid:9001", nil); err == nil {
		t.Error("an unresolvable host name counts as answered")
	}
}
