package envoydriver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// TestAuthzBufferLimitAppliesToResponses: ext_authz buffering the request
// body without allow_partial_message sets the stream's buffer limit to
// max_request_bytes (ext_authz.cc setDecoderBufferLimit), and that one
// limit bounds response buffering too (filter_manager.cc setBufferLimit):
// an ext_proc BUFFERED response body over it gets Envoy's 500 before the
// processor sees it. Without a request body, or with partial messages,
// the listener's limit stays.
func TestAuthzBufferLimitAppliesToResponses(t *testing.T) {
	const maxRequestBytes = 1024
	for _, tc := range []struct {
		name         string
		method, body string
		allowPartial bool
		respBytes    int
		wantStatus   int
	}{
		{"response under max_request_bytes", "POST", "{}", false, 512, 200},
		{"response over max_request_bytes: 500", "POST", "{}", false, 4096, 500},
		{"allow_partial_message keeps the listener's limit", "POST", "{}", true, 4096, 200},
		{"no request body: nothing buffered, the listener's limit", "GET", "", false, 4096, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			payload := strings.Repeat("x", tc.respBytes)
			up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(payload))
			})
			_, authzAddr := newAuthz(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
				return &authv3.CheckResponse{Status: &status.Status{}}, nil
			})
			proc, procAddr := newProc(t, serveEach(one(echoResponse)))
			authz := &extauthzv3.ExtAuthz{
				Services:            &extauthzv3.ExtAuthz_GrpcService{GrpcService: grpcService("authz", 0)},
				TransportApiVersion: corev3.ApiVersion_V3,
				WithRequestBody:     &extauthzv3.BufferSettings{MaxRequestBytes: maxRequestBytes, AllowPartialMessage: tc.allowPartial},
			}
			pc := procConfigFor("proc", &extprocv3.ProcessingMode{
				RequestHeaderMode: extprocv3.ProcessingMode_SKIP, ResponseBodyMode: extprocv3.ProcessingMode_BUFFERED})
			l := listener(t, routeConfig(prefixRoute("/", "up")), authzFilter(t, authz), procFilter(t, pc))
			l.PerConnectionBufferLimitBytes = wrapperspb.UInt32(1 << 20)
			d := startDriver(t, Config{Listener: l, Clusters: []*clusterv3.Cluster{
				staticCluster("up", up.addr()), staticCluster("authz", authzAddr), staticCluster("proc", procAddr)}})
			got := do(t, d, tc.method, "/", tc.body, nil)
			if got.Status != tc.wantStatus {
				t.Fatalf("status %d %q, want %d", got.Status, got.Body, tc.wantStatus)
			}
			sawBody := false
			for _, st := range proc.received() {
				for _, m := range st {
					sawBody = sawBody || m.GetResponseBody() != nil
				}
			}
			switch {
			case tc.wantStatus == 200 && (got.Body != payload || !sawBody):
				t.Fatalf("body of %d bytes, processor saw the body: %v", len(got.Body), sawBody)
			case tc.wantStatus == 500 && (got.Body != "Internal Server Error" || sawBody):
				t.Fatalf("overflow answered %q; processor saw the body: %v", got.Body, sawBody)
			}
		})
	}
}
