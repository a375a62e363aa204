package serve_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procmodev3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/internal/telemetry"
	"github.com/airlock-mcp/airlock/internal/wire"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// TestTraceThroughCheckAndProc: one client trace, as Envoy propagates it
// in the metadata of its ext_authz and ext_proc calls, continues through
// a running airlock's Check and the ext_proc stream of the same exchange
// (the stream reads ext_authz's dynamic metadata as Envoy forwards it),
// and the audit's decision row carries its trace id.
func TestTraceThroughCheckAndProc(t *testing.T) {
	const traceID, spanID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	iss, err := oidcissuer.New(oidcissuer.Options{Path: "/oauth2/default"})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	dir := t.TempDir()
	pol := filepath.Join(dir, "policies")
	if err := approvalstest.WritePolicy(pol); err != nil {
		t.Fatal(err)
	}
	src := fmt.Sprintf(`
listen: {authz: "127.0.0.1:0", http: "", proc: "127.0.0.1:0", xds: ""}
public_url: "http://gateway.test"
issuers: [{name: okta, url: %q}]
targets: [{name: github, upstream: "http://127.0.0.1:1/mcp"}]
policy: {dir: %s, reload_interval: 0s}
grants: {dir: %s}
audit: {embedded: {dir: %s}, spool: {dir: %s}}
`, iss.URL(), pol, filepath.Join(dir, "grants"), filepath.Join(dir, "audit"), filepath.Join(dir, "spool"))
	cfg, err := config.Parse(strings.NewReader(src), filepath.Join(dir, "airlock.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	g, err := serve.Start(context.Background(), cfg, serve.Options{Telemetry: telemetry.Options{Exporter: exp}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		g.Stop(ctx)
	}()
	tok, err := iss.Mint(oidcissuer.Token{Subject: "alice@example.com", ClientID: "0oa-agent", Groups: []string{"engineering"},
		Audience: []string{cfg.Targets[0].Resource}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(metadata.NewOutgoingContext(context.Background(),
		metadata.Pairs("traceparent", "00-"+traceID+"-"+spanID+"-01")), 10*time.Second)
	defer cancel()

	dial := func(addr string) *grpc.ClientConn {
		c, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_issues","arguments":{"repo":"acme/x"}}}`
	resp, err := authv3.NewAuthorizationClient(dial(g.AuthzAddr.String())).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: cfg.Targets[0].PathPrefix, Host: "gateway.test", Scheme: "http", RawBody: []byte(body),
			Headers: map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json",
				"mcp-protocol-version": "2025-03-26", "mcp-session-id": "sess-trace", "x-request-id": "req-trace-1"},
		}},
		ContextExtensions: map[string]string{wire.ContextTarget: "github"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if resp.GetOkResponse() == nil {
		t.Fatalf("denied: %s", resp.GetDeniedResponse().GetBody())
	}

	// Envoy's ext_proc filter forwards ext_authz's dynamic metadata.
	stream, err := extprocv3.NewExternalProcessorClient(dial(g.ProcAddr.String())).Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{{Key: ":method", RawValue: []byte("POST")}, {Key: ":path", RawValue: []byte("/mcp/github")}}}
	md := &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{wire.AuthzNamespace: resp.GetDynamicMetadata()}}
	if err := stream.Send(&extprocv3.ProcessingRequest{MetadataContext: md,
		ProtocolConfig: &extprocv3.ProtocolConfiguration{RequestBodyMode: procmodev3.ProcessingMode_BUFFERED, ResponseBodyMode: procmodev3.ProcessingMode_BUFFERED},
		Request:        &extprocv3.ProcessingRequest_RequestHeaders{RequestHeaders: &extprocv3.HttpHeaders{Headers: hm}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); !errors.Is(err, io.EOF) {
		t.Fatalf("stream end: %v", err)
	}

	decisionID := resp.GetDynamicMetadata().AsMap()["decision_id"]
	var check, proc *tracetest.SpanStub
	spans := exp.GetSpans()
	for i := range spans {
		switch spans[i].Name {
		case "airlock.authz.Check":
			check = &spans[i]
		case "airlock.proc.Stream":
			proc = &spans[i]
		}
	}
	if check == nil || proc == nil {
		t.Fatalf("spans %d: Check %v, ext_proc stream %v", len(spans), check != nil, proc != nil)
	}
	for _, s := range []*tracetest.SpanStub{check, proc} {
		if s.SpanContext.TraceID().String() != traceID || s.Parent.SpanID().String() != spanID {
			t.Errorf("%s: trace %s parent %s, want the client's %s / %s", s.Name, s.SpanContext.TraceID(), s.Parent.SpanID(), traceID, spanID)
		}
		found := false
		for _, kv := range s.Attributes {
			if kv.Key == "airlock.decision_id" && kv.Value.AsString() == decisionID {
				found = true
			}
		}
		if !found {
			t.Errorf("%s does not name decision %v", s.Name, decisionID)
		}
	}

	// The audit's decision row names the trace.
	if err := g.Audit.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	trail, err := g.Audit.Replay(ctx, "sess-trace")
	if err != nil {
		t.Fatal(err)
	}
	if len(trail.Decisions) != 1 || trail.Decisions[0].TraceID != traceID {
		t.Fatalf("audit decisions %+v, want one with trace %s", trail.Decisions, traceID)
	}
}
