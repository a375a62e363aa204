package envoydriver

import (
	"net"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// hang answers nothing until the stream ends.
func hang(s *procStream) error {
	for {
		if _, err := s.Recv(); err != nil {
			return nil
		}
	}
}

func TestExtProcFailures(t *testing.T) {
	fma := func(c *extprocv3.ExternalProcessor) { c.FailureModeAllow = true }
	shortTimeout := func(c *extprocv3.ExternalProcessor) { c.MessageTimeout = durationpb.New(20 * time.Millisecond) }
	twice := serveEach(func(r *procsvc.ProcessingRequest) []*procsvc.ProcessingResponse {
		return []*procsvc.ProcessingResponse{echoResponse(r), echoResponse(r)}
	})
	bodyBeforeHeaders := serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		if r.GetRequestHeaders() != nil {
			return bodyResp(true, nil, nil)
		}
		return echoResponse(r)
	}))
	for _, tc := range []struct {
		name       string
		handle     func(*procStream) error
		mode       *extprocv3.ProcessingMode
		mod        func(*extprocv3.ExternalProcessor)
		wantStatus int
	}{
		{"two responses to one message is a stream failure: 500", twice, nil, nil, 500},
		{"a spurious response under failure_mode_allow is ignored", twice, nil, fma, 200},
		{"a response of the wrong type: 500", bodyBeforeHeaders, nil, nil, 500},
		{"message_timeout: 504", hang, nil, shortTimeout, 504},
		{"message_timeout under failure_mode_allow continues", hang, nil, func(c *extprocv3.ExternalProcessor) { shortTimeout(c); fma(c) }, 200},
		{"stream error: 500", func(*procStream) error { return status.Error(codes.Internal, "boom") }, nil, nil, 500},
		{"stream error with status_on_error", func(*procStream) error { return status.Error(codes.Internal, "boom") }, nil,
			func(c *extprocv3.ExternalProcessor) {
				c.StatusOnError = &typev3.HttpStatus{Code: typev3.StatusCode_BadGateway}
			}, 502},
		{"stream error under failure_mode_allow continues", func(*procStream) error { return status.Error(codes.Internal, "boom") }, nil, fma, 200},
		{"a clean close means proceed without the processor", func(*procStream) error { return nil }, nil, nil, 200},
		{"STREAMED body answered with streamed_response: 500", serveEach(one(streamedEcho)),
			&extprocv3.ProcessingMode{RequestBodyMode: streamed}, nil, 500},
		{"FULL_DUPLEX_STREAMED body answered without streamed_response: 500", serveEach(one(echoResponse)),
			&extprocv3.ProcessingMode{RequestBodyMode: duplex, RequestTrailerMode: send}, nil, 500},
		{"FULL_DUPLEX_STREAMED has no message timer", serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
			if r.GetResponseHeaders() != nil {
				time.Sleep(100 * time.Millisecond) // well past message_timeout
			}
			return streamedEcho(r)
		})), &extprocv3.ProcessingMode{ResponseBodyMode: duplex, ResponseTrailerMode: send}, shortTimeout, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newProcEnv(t, tc.handle, tc.mode, tc.mod, nil)
			got := do(t, e.d, "POST", "/", "request body", nil)
			if got.Status != tc.wantStatus {
				t.Fatalf("status %d (%q), want %d", got.Status, got.Body, tc.wantStatus)
			}
			if tc.wantStatus == 200 && got.Body != "upstream ok" {
				t.Errorf("body %q", got.Body)
			}
		})
	}
	t.Run("unreachable processor: 500", func(t *testing.T) {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		dead := ln.Addr().String()
		ln.Close()
		up := newUpstream(t, nil)
		d := startDriver(t, Config{Listener: listener(t, routeConfig(prefixRoute("/", "up")), procFilter(t, procConfigFor("proc", nil))),
			Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("proc", dead)}})
		if got := do(t, d, "GET", "/", "", nil); got.Status != 500 {
			t.Errorf("status %d, want 500", got.Status)
		}
	})
}

func TestExtProcConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*extprocv3.ExternalProcessor)
		want string
	}{
		{"FULL_DUPLEX_STREAMED needs trailer SEND", func(c *extprocv3.ExternalProcessor) {
			c.ProcessingMode = &extprocv3.ProcessingMode{ResponseBodyMode: duplex}
		}, "response_trailer_mode has to be set to SEND"},
		{"FULL_DUPLEX_STREAMED forbids failure_mode_allow", func(c *extprocv3.ExternalProcessor) {
			c.ProcessingMode = &extprocv3.ProcessingMode{RequestBodyMode: duplex, RequestTrailerMode: send}
			c.FailureModeAllow = true
		}, "failure_mode_allow has to be left as false"},
		{"observability_mode", func(c *extprocv3.ExternalProcessor) { c.ObservabilityMode = true }, "observability_mode is not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := procConfigFor("proc", nil)
			tc.mod(c)
			_, err := New(Config{Listener: listener(t, routeConfig(), procFilter(t, c)), Clusters: []*clusterv3.Cluster{staticCluster("proc", "127.0.0.1:1")}}, Options{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New error = %v, want %q", err, tc.want)
			}
		})
	}
}
