package serve_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/grants"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
	"github.com/airlock-mcp/airlock/internal/mtls/mtlstest"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// hookSecret is the delivered webhook's signing secret, in the Standard
// Webhooks form.
const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// TestMetricsAfterASession runs a scripted session (runSession) through a
// running airlock and scrapes /metrics as Prometheus would: the series
// have the expected values, hold no secret, and pass promlint.
func TestMetricsAfterASession(t *testing.T) {
	s := runSession(t)
	text, fams, events := s.text, s.fams, s.events
	authzSvc := map[string]string{"grpc_service": "envoy.service.auth.v3.Authorization", "grpc_method": "Check"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	github := map[string]string{"target": "github"}
	tests := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"airlock_authz_decisions_total", map[string]string{"target": "github", "outcome": "allow", "method": "tools/call"}, 2},
		{"airlock_authz_decisions_total", map[string]string{"target": "github", "outcome": "deny", "method": "tools/call"}, 1},
		{"grpc_server_started_total", authzSvc, 3},
		{"grpc_server_handled_total", with(authzSvc, "grpc_code", "OK"), 3},
		{"grpc_server_handled_total", with(authzSvc, "grpc_code", "Internal"), 0},
		{"grpc_server_handling_seconds_count", authzSvc, 3},
		{"grpc_server_started_total", map[string]string{"grpc_service": "envoy.service.discovery.v3.AggregatedDiscoveryService", "grpc_method": "StreamAggregatedResources"}, 0},
		{"airlock_access_requests_opened_total", github, 1},
		{"airlock_access_requests_decided_total", with(github, "verdict", "approved"), 1},
		{"airlock_access_requests_pending", nil, 0},
		{"airlock_access_request_approval_seconds_count", map[string]string{"verdict": "approved"}, 1},
		{"airlock_holds_total", map[string]string{"outcome": "allowed"}, 1},
		{"airlock_hold_seconds_count", map[string]string{"outcome": "allowed"}, 1},
		{"airlock_grants_issued_total", github, 1},
		{"airlock_grants_used_total", github, 1},
		{"airlock_grants_ended_total", with(github, "reason", "consumed"), 1},
		{"airlock_webhook_deliveries_total", map[string]string{"webhook": "delivered"}, events},
		{"airlock_webhook_failures_total", map[string]string{"webhook": "delivered"}, 0},
		{"airlock_webhook_deliveries_total", map[string]string{"webhook": "refused"}, 0},
		{"airlock_webhook_failures_total", map[string]string{"webhook": "refused"}, events},
		{"airlock_webhook_attempts_total", map[string]string{"webhook": "refused"}, events},
		{"airlock_webhook_dropped_total", map[string]string{"webhook": "delivered"}, 0},
		{"airlock_audit_spool_full", nil, 0},
		{"airlock_proc_masked_total", map[string]string{"target": "github", "detector": "aws_access_key"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_service": "envoy.service.ext_proc.v3.ExternalProcessor", "grpc_method": "Process", "grpc_code": "OK"}, 1},
		{"airlock_tls_certificate_expiry_timestamp_seconds", map[string]string{"role": "server"}, s.certExpiry["server"]},
		{"airlock_tls_certificate_expiry_timestamp_seconds", map[string]string{"role": "envoy_client"}, s.certExpiry["envoy_client"]},
		{"airlock_xds_node_synced", map[string]string{"node": "gw-1", "type": "scoped_routes"}, 1},
		{"airlock_xds_node_nacks_total", map[string]string{"node": "gw-2", "type": "scoped_routes"}, 1},
		{"airlock_xds_node_synced", map[string]string{"node": "gw-2", "type": "scoped_routes"}, 0},
		{"airlock_xds_refused_total", map[string]string{"reason": "no_node_id"}, 1},
	}
	for _, tt := range tests {
		if got := sample(fams, tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if got := sample(fams, "airlock_grants_live", github); got != 1 {
		t.Errorf("airlock_grants_live{target=github} = %v after the single-use grant was used, want the time-bound one only", got)
	}
	// No secret and no raw client input in any series.
	for _, secret := range s.secrets {
		if strings.Contains(text, secret) {
			t.Errorf("/metrics holds %.12q…", secret)
		}
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// session is what a scripted session leaves: the /metrics page scraped
// after it (text and parsed), the webhook events each receiver got, and
// the secrets and client input no series may hold.
type session struct {
	text    string
	fams    map[string]*dto.MetricFamily
	events  float64
	secrets []string
	// certExpiry is when listen.tls's certificates expire, by role.
	certExpiry map[string]float64
}

// runSession runs a scripted session through a running airlock
// (serve.Start, its gRPC listeners on mutual TLS, real gRPC Checks over
// loopback presenting Envoy's client certificate, the approvals API, real
// webhook receivers: one verifying every delivery with the Standard
// Webhooks reference library, one refusing them all): a call allowed, one
// denied, one held then approved, the allowed call's response through
// ext_proc, an Envoy node on ADS that acknowledged its scoped routes and
// a second that rejected them (both stay connected), a stream without a
// node id refused, and a time-bound grant live from before the start.
// Then it scrapes /metrics. TestMetricsAfterASession checks the values;
// TestDashboardsAndRulesUseServedMetrics the names deploy/ uses.
func runSession(t *testing.T) session {
	t.Helper()
	var out session
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()

	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	var hookMu sync.Mutex
	var verified, refused int
	var badSig []error
	okHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		err := wh.Verify(body, r.Header)
		hookMu.Lock()
		if err != nil {
			badSig = append(badSig, err)
		} else {
			verified++
		}
		hookMu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer okHook.Close()
	downHook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hookMu.Lock()
		refused++
		hookMu.Unlock()
		w.WriteHeader(http.StatusBadRequest) // a refusal: not retried, the event fails
	}))
	defer downHook.Close()
	t.Setenv("AIRLOCK_TEST_METRICS_HOOK_SECRET", hookSecret)

	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := approvalstest.WritePolicy(pol); err != nil {
		t.Fatal(err)
	}
	// Mutual TLS on the gRPC listeners, as deployed: airlock's certificate
	// and Envoy's client certificate (readable here, so its expiry is
	// reported too).
	serverCA, clientCA := mtlstest.NewCA(t, "airlock-ca"), mtlstest.NewCA(t, "gateway-ca")
	const airlockName, gatewayName = "airlock.test", "gateway.test"
	serverExpiry, envoyExpiry := time.Now().Add(30*24*time.Hour).Truncate(time.Second), time.Now().Add(10*24*time.Hour).Truncate(time.Second)
	tlsFiles := mtlstest.WriteServerFiles(t, serverCA.Issue(t, "airlock", serverExpiry, airlockName), clientCA)
	envoyLeaf := clientCA.Issue(t, "gateway", envoyExpiry, gatewayName)
	out.certExpiry = map[string]float64{"server": float64(serverExpiry.Unix()), "envoy_client": float64(envoyExpiry.Unix())}
	envoyCert, envoyKey, envoyCA := filepath.Join(dir, "envoy.crt"), filepath.Join(dir, "envoy.key"), filepath.Join(dir, "envoy-ca.crt")
	mtlstest.WriteAtomic(t, envoyCert, envoyLeaf.CertPEM)
	mtlstest.WriteAtomic(t, envoyKey, envoyLeaf.KeyPEM)
	mtlstest.WriteAtomic(t, envoyCA, serverCA.PEM)
	creds := grpc.WithTransportCredentials(credentials.NewTLS(mtlstest.ClientConfig(t, serverCA, airlockName, &envoyLeaf)))
	src := fmt.Sprintf(`
listen:
  authz: "127.0.0.1:0"
  http: "127.0.0.1:0"
  proc: "127.0.0.1:0"
  xds: "127.0.0.1:0"
  tls:
    cert_file: %q
    key_file: %q
    client_ca_file: %q
    allowed_identities: [%s]
    envoy: {cert_file: %q, key_file: %q, ca_file: %q, server_name: %s}
public_url: "http://gateway.test"
issuers: [{name: okta, url: %q}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp", masking_profile: default}]
policy: {dir: %s, reload_interval: 0s}
grants: {dir: %s, hold_window: 30s}
audit: {embedded: {dir: %s}, spool: {dir: %s}}
decision_log: {sink: file, path: %s}
notifications:
  webhooks:
    - {name: delivered, url: %q, secret_env: AIRLOCK_TEST_METRICS_HOOK_SECRET, events: ["request.opened", "request.approved", "grant.issued"]}
    - {name: refused, url: %q, secret_env: AIRLOCK_TEST_METRICS_HOOK_SECRET, events: ["request.opened", "request.approved", "grant.issued"]}
`, tlsFiles.Cert, tlsFiles.Key, tlsFiles.ClientCA, gatewayName, envoyCert, envoyKey, envoyCA, airlockName, iss.URL(), pol, filepath.Join(dir, "grants"), filepath.Join(dir, "audit"), filepath.Join(dir, "spool"), filepath.Join(dir, "decisions.jsonl"), okHook.URL, downHook.URL)
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// A time-bound grant from before this start is live throughout (for
	// another tool, so the session's calls do not use it).
	grantstest.WriteLive(t, cfg.Grants.Dir, 1, "github", iss.URL())
	g, err := serve.Start(context.Background(), cfg, serve.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer stopGateway(g)

	agent, err := iss.Mint(oidcissuer.Token{Subject: "alice@example.com", User: "00u-alice", ClientID: "0oa-agent",
		Groups: []string{"engineering"}, Audience: []string{cfg.Targets[0].Resource}})
	if err != nil {
		t.Fatal(err)
	}
	bob, err := iss.Mint(oidcissuer.Token{Subject: "bob@example.com", User: "00u-bob", ClientID: "airlock-cli",
		Groups: []string{"airlock-approvers"}, Audience: []string{cfg.API.AudienceFor(cfg.PublicURL)}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := grpc.NewClient(g.AuthzAddr.String(), creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	authz := authv3.NewAuthorizationClient(conn)
	// check sends a tools/call for tool as Envoy does and returns the
	// HTTP status the client would get (200 allowed; a denial's status).
	var allowedMeta *structpb.Struct // the dynamic metadata of the first allowed call, for ext_proc
	var metaMu sync.Mutex
	check := func(id int, tool string) int {
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"repo":"acme/x"}}}`, id, tool)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp, err := authz.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: cfg.Targets[0].PathPrefix, Host: "gateway.test", Scheme: "http", Protocol: "HTTP/1.1",
				Headers: map[string]string{"authorization": "Bearer " + agent, "content-type": "application/json",
					"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-03-26", "mcp-session-id": "sess-metrics"},
				RawBody: []byte(body), Size: int64(len(body)),
			}},
			ContextExtensions: map[string]string{wire.ContextTarget: "github"},
		}})
		if err != nil {
			t.Errorf("Check %s: %v", tool, err)
			return 0
		}
		if resp.GetOkResponse() != nil {
			metaMu.Lock()
			if allowedMeta == nil {
				allowedMeta = resp.GetDynamicMetadata()
			}
			metaMu.Unlock()
			return 200
		}
		return int(resp.GetDeniedResponse().GetStatus().GetCode())
	}
	api := func(method, path string, out any) {
		t.Helper()
		req, _ := http.NewRequest(method, "http://"+g.HTTPAddr.String()+approvals.APIPrefix+path, strings.NewReader("{}"))
		req.Header.Set("Authorization", "Bearer "+bob)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode/100 != 2 {
			t.Fatalf("%s %s: %d", method, path, resp.StatusCode)
		}
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatal(err)
			}
		}
	}

	// The session: allowed, denied, held → approved.
	if got := check(1, "echo"); got != 200 {
		t.Fatalf("echo: %d, want allowed", got)
	}
	if got := check(2, "get_env"); got != 403 {
		t.Fatalf("get_env: %d, want 403", got)
	}
	held := make(chan int, 1)
	go func() { held <- check(3, "delete_repo") }()
	var id string
	for deadline := time.Now().Add(30 * time.Second); id == ""; time.Sleep(20 * time.Millisecond) {
		var list struct {
			Requests []grants.Request `json:"requests"`
		}
		api("GET", "requests?state=pending", &list)
		if len(list.Requests) > 0 {
			id = list.Requests[0].ID
		} else if time.Now().After(deadline) {
			t.Fatal("the call was never held")
		}
	}
	api("POST", "requests/"+id+"/approve", nil)
	select {
	case got := <-held:
		if got != 200 {
			t.Fatalf("held call after approval: %d, want allowed", got)
		}
	case <-time.After(time.Minute):
		t.Fatal("the held call did not end")
	}
	// The allowed call's response passes ext_proc as Envoy sends it, with
	// ext_authz's metadata: an AWS key in it is masked and counted.
	procConn, err := grpc.NewClient(g.ProcAddr.String(), creds)
	if err != nil {
		t.Fatal(err)
	}
	defer procConn.Close()
	pctx, pcancel := context.WithTimeout(context.Background(), time.Minute)
	defer pcancel()
	stream, err := extprocv3.NewExternalProcessorClient(procConn).Process(pctx)
	if err != nil {
		t.Fatal(err)
	}
	hdrs := func(kv ...string) *extprocv3.HttpHeaders {
		h := &corev3.HeaderMap{}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Headers = append(h.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
		}
		return &extprocv3.HttpHeaders{Headers: h}
	}
	const awsKey = "AKIAIOSFODNN7EXAMPLE" // AWS's documented example key id
	toolCall := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"repo":"acme/x"}}}`
	var masked string
	for i, req := range []*extprocv3.ProcessingRequest{
		{ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_BUFFERED},
			MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: allowedMeta}},
			Request:         &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: hdrs(":method", "POST", ":path", cfg.Targets[0].PathPrefix, "mcp-session-id", "sess-metrics")}},
		{Request: &extprocv3.ProcessingRequest_RequestBody{RequestBody: &extprocv3.HttpBody{Body: []byte(toolCall), EndOfStream: true}}},
		{Request: &extprocv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: hdrs(":status", "200", "content-type", "application/json")}},
		{Request: &extprocv3.ProcessingRequest_ResponseBody{ResponseBody: &extprocv3.HttpBody{
			Body: []byte(`{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"key ` + awsKey + `"}]}}`), EndOfStream: true}}},
	} {
		if err := stream.Send(req); err != nil {
			t.Fatalf("ext_proc message %d: %v", i, err)
		}
		resp, err := stream.Recv()
		if err != nil {
			t.Fatalf("ext_proc answer %d: %v", i, err)
		}
		if b := resp.GetResponseBody(); b != nil {
			masked = string(b.GetResponse().GetBodyMutation().GetBody())
		}
	}
	// The stream ends as Envoy ends it; the server's answer to that (EOF)
	// comes after the gRPC metrics counted the stream as handled.
	_ = stream.CloseSend()
	if _, err := stream.Recv(); err != io.EOF {
		t.Fatalf("ext_proc stream end: %v, want EOF", err)
	}
	if strings.Contains(masked, awsKey) || !strings.Contains(masked, "[MASKED:") {
		t.Fatalf("ext_proc did not mask the response: %q", masked)
	}

	// An Envoy node connects to ADS, as Envoy does (delta, its node id
	// and version), takes its scoped routes and acknowledges them; it
	// stays connected until the scrape.
	adsConn, err := grpc.NewClient(g.XDSAddr.String(), creds, grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	defer adsConn.Close()
	actx, acancel := context.WithCancel(context.Background())
	defer acancel()
	ads, err := discovery.NewAggregatedDiscoveryServiceClient(adsConn).DeltaAggregatedResources(actx)
	if err != nil {
		t.Fatal(err)
	}
	node := &corev3.Node{Id: "gw-1", Cluster: "gateway", UserAgentName: "envoy",
		UserAgentVersionType: &corev3.Node_UserAgentBuildVersion{UserAgentBuildVersion: &corev3.BuildVersion{Version: &typev3.SemanticVersion{MajorNumber: 1, MinorNumber: 36}}}}
	if err := ads.Send(&discovery.DeltaDiscoveryRequest{Node: node, TypeUrl: resource.ScopedRouteType}); err != nil {
		t.Fatal(err)
	}
	first, err := ads.Recv()
	if err != nil {
		t.Fatal(err)
	}
	if err := ads.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ScopedRouteType, ResponseNonce: first.GetNonce()}); err != nil {
		t.Fatal(err)
	}
	// A second node rejects its first response (a NACK), and a stream
	// without a node id is refused.
	nack, err := discovery.NewAggregatedDiscoveryServiceClient(adsConn).DeltaAggregatedResources(actx)
	if err != nil {
		t.Fatal(err)
	}
	node2 := &corev3.Node{Id: "gw-2", Cluster: "gateway", UserAgentName: "envoy", UserAgentVersionType: node.UserAgentVersionType}
	if err := nack.Send(&discovery.DeltaDiscoveryRequest{Node: node2, TypeUrl: resource.ScopedRouteType}); err != nil {
		t.Fatal(err)
	}
	if first, err = nack.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := nack.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ScopedRouteType, ResponseNonce: first.GetNonce(),
		ErrorDetail: &status.Status{Code: int32(codes.InvalidArgument), Message: "rejected by the test"}}); err != nil {
		t.Fatal(err)
	}
	anon, err := discovery.NewAggregatedDiscoveryServiceClient(adsConn).DeltaAggregatedResources(actx)
	if err != nil {
		t.Fatal(err)
	}
	if err := anon.Send(&discovery.DeltaDiscoveryRequest{TypeUrl: resource.ScopedRouteType}); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.Recv(); err == nil {
		t.Fatal("an ADS stream without a node id was served")
	}

	// Three events for each webhook: opened, approved, grant issued.
	const events = 3
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		hookMu.Lock()
		done := verified+len(badSig) >= events && refused >= events
		hookMu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhooks were not all called")
		}
	}
	hookMu.Lock()
	if len(badSig) > 0 {
		t.Errorf("the Standard Webhooks reference library refused deliveries: %v", badSig)
	}
	hookMu.Unlock()

	// Scrape as Prometheus does. The webhook counters are read at scrape
	// time, the receiver may answer before the sender counts: wait for it.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		out.text, out.fams = scrape(t, "http://"+g.HTTPAddr.String()+"/metrics")
		if sample(out.fams, "airlock_webhook_failures_total", map[string]string{"webhook": "refused"}) == events &&
			sample(out.fams, "airlock_xds_node_synced", map[string]string{"node": "gw-1", "type": "scoped_routes"}) == 1 &&
			sample(out.fams, "airlock_xds_node_nacks_total", map[string]string{"node": "gw-2", "type": "scoped_routes"}) == 1 &&
			sample(out.fams, "airlock_webhook_deliveries_total", map[string]string{"webhook": "delivered"}) == events {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook counters never reached the deliveries made, or the Envoy node never synced")
		}
	}
	out.events = events
	out.secrets = []string{hookSecret, "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", awsKey, agent, bob, "acme/x", "sess-metrics", "alice@example.com"}
	return out
}

// scrape reads a /metrics page in Prometheus's text format.
func scrape(t *testing.T, url string) (string, map[string]*dto.MetricFamily) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b), fams
}

// sample is the value of the series of family name (a histogram's
// name_count or name_sum included) whose labels include labels; -1 when
// there is none.
func sample(fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	base, suffix := name, ""
	for _, s := range []string{"_count", "_sum"} {
		if b, ok := strings.CutSuffix(name, s); ok && fams[name] == nil {
			base, suffix = b, s
		}
	}
	mf := fams[base]
	if mf == nil {
		return -1
	}
series:
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range labels {
			if have[k] != v {
				continue series
			}
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil && suffix == "_count":
			return float64(m.Histogram.GetSampleCount())
		case m.Histogram != nil && suffix == "_sum":
			return m.Histogram.GetSampleSum()
		}
	}
	return -1
}
