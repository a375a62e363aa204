package envoydriver

import (
	"context"
	"net/http"
	"strings"
	"testing"

	accesslogv3 "github.com/envoyproxy/go-control-plane/envoy/config/accesslog/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/proto"
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
		mapper       bool // a local_reply_config mapper rewrites 500s
		wantStatus   int
	}{
		{"response under max_request_bytes", "POST", "{}", false, 512, false, 200},
		{"response over max_request_bytes: 500", "POST", "{}", false, 4096, false, 500},
		{"the overflow 500 goes through the local reply mappers", "POST", "{}", false, 4096, true, 502},
		{"allow_partial_message keeps the listener's limit", "POST", "{}", true, 4096, false, 200},
		{"no request body: nothing buffered, the listener's limit", "GET", "", false, 4096, false, 200},
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
			if tc.mapper {
				setLocalReply(t, l, &hcmv3.LocalReplyConfig{Mappers: []*hcmv3.ResponseMapper{{
					Filter: &accesslogv3.AccessLogFilter{FilterSpecifier: &accesslogv3.AccessLogFilter_StatusCodeFilter{
						StatusCodeFilter: &accesslogv3.StatusCodeFilter{Comparison: &accesslogv3.ComparisonFilter{
							Op: accesslogv3.ComparisonFilter_EQ, Value: &corev3.RuntimeUInt32{DefaultValue: 500}}}}},
					StatusCode: wrapperspb.UInt32(502),
					Body:       &corev3.DataSource{Specifier: &corev3.DataSource_InlineString{InlineString: "mapped"}},
				}}})
			}
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
			case tc.mapper && got.Body != "mapped":
				t.Fatalf("mapped overflow answered %q", got.Body)
			}
		})
	}
}

// setLocalReply sets the listener's HCM local_reply_config.
func setLocalReply(t *testing.T, l *listenerv3.Listener, c *hcmv3.LocalReplyConfig) {
	hcm := &hcmv3.HttpConnectionManager{}
	if err := l.FilterChains[0].Filters[0].GetTypedConfig().UnmarshalTo(hcm); err != nil {
		t.Fatal(err)
	}
	hcm.LocalReplyConfig = proto.Clone(c).(*hcmv3.LocalReplyConfig)
	l.FilterChains[0].Filters[0].ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: mustAny(t, hcm)}
}
