package envoydriver

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procsvc "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/structpb"
)

// TestExtProcStreamedSSE pins STREAMED response processing: each chunk goes
// to the processor as it arrives and is released downstream when its
// BodyResponse comes back, so the client sees the first event before the
// upstream writes the second.
func TestExtProcStreamedSSE(t *testing.T) {
	gotFirst := make(chan struct{})
	e := newProcEnv(t, serveEach(one(func(r *procsvc.ProcessingRequest) *procsvc.ProcessingResponse {
		if b := r.GetResponseBody(); b != nil {
			return bodyResp(false, replaceBodyWith(strings.ToUpper(string(b.GetBody()))), nil)
		}
		return echoResponse(r)
	})), &extprocv3.ProcessingMode{ResponseBodyMode: streamed}, nil, sseUpstream(gotFirst))
	events := streamEvents(t, e.d, gotFirst)
	if diff := cmp.Diff([]string{"DATA: ONE\n\n", "DATA: TWO\n\n", "DATA: THREE\n\n"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
}

// maskingProcessor is a FULL_DUPLEX_STREAMED processor like airlock's: it
// keeps a carry-over buffer, emits whole SSE events with "secret" masked,
// and ends with end_of_stream once it saw end_of_stream.
func maskingProcessor(s *procStream) error {
	var carry []byte
	for {
		r, err := s.Recv()
		if err != nil {
			return nil
		}
		b := r.GetResponseBody()
		if b == nil {
			if err := s.Send(echoResponse(r)); err != nil {
				return nil
			}
			continue
		}
		carry = append(carry, b.GetBody()...)
		var out []byte
		for {
			i := bytes.Index(carry, []byte("\n\n"))
			if i < 0 {
				break
			}
			out = append(out, bytes.ReplaceAll(carry[:i+2], []byte("secret"), []byte("***"))...)
			carry = carry[i+2:]
		}
		if b.GetEndOfStream() {
			out = append(out, carry...)
			carry = nil
		}
		if len(out) == 0 && !b.GetEndOfStream() {
			continue // buffer until an event boundary: M:N
		}
		resp := &procsvc.ProcessingResponse{Response: &procsvc.ProcessingResponse_ResponseBody{ResponseBody: &procsvc.BodyResponse{Response: &procsvc.CommonResponse{
			BodyMutation: &procsvc.BodyMutation{Mutation: &procsvc.BodyMutation_StreamedResponse{StreamedResponse: &procsvc.StreamedBodyResponse{Body: out, EndOfStream: b.GetEndOfStream()}}}}}}}
		if err := s.Send(resp); err != nil {
			return nil
		}
	}
}

func TestExtProcFullDuplexSSE(t *testing.T) {
	gotFirst := make(chan struct{})
	up := func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fl := w.(http.Flusher)
		io.WriteString(w, "data: one\n\n")
		fl.Flush()
		select {
		case <-gotFirst:
		case <-time.After(testTimeout):
			return
		}
		// An event split across chunks.
		io.WriteString(w, "data: se")
		fl.Flush()
		io.WriteString(w, "cret\n\n")
		fl.Flush()
	}
	e := newProcEnv(t, maskingProcessor, &extprocv3.ProcessingMode{ResponseBodyMode: duplex, ResponseTrailerMode: send}, nil, up)
	events := streamEvents(t, e.d, gotFirst)
	if diff := cmp.Diff([]string{"data: one\n\n", "data: ***\n\n"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	msgs := e.proc.received()[0]
	last := msgs[len(msgs)-1]
	if !last.GetResponseBody().GetEndOfStream() {
		t.Errorf("last message %s: the final body chunk must carry end_of_stream when there are no trailers", kind(last))
	}
}

// TestExtProcStreamedRequestPipelining pins that STREAMED request chunks are
// sent to the processor as they are read, before earlier chunks are
// answered: this processor answers chunk one only after chunk two arrived.
func TestExtProcStreamedRequestPipelining(t *testing.T) {
	upstreamGot := make(chan string, 4)
	procGotFirst := make(chan struct{})
	firstSeen := procGotFirst
	handler := func(s *procStream) error {
		var held []*procsvc.ProcessingRequest
		for {
			r, err := s.Recv()
			if err != nil {
				return nil
			}
			if r.GetRequestBody() == nil {
				if err := s.Send(echoResponse(r)); err != nil {
					return nil
				}
				continue
			}
			held = append(held, r)
			if first := procGotFirst; first != nil && !r.GetRequestBody().GetEndOfStream() {
				procGotFirst = nil
				close(first)
				continue // answer the first chunk only once the next one is here
			}
			for _, h := range held {
				if err := s.Send(bodyResp(true, replaceBodyWith(strings.ToUpper(string(h.GetRequestBody().GetBody()))), nil)); err != nil {
					return nil
				}
			}
			held = nil
		}
	}
	// A plain upstream that reports each read as it happens.
	upSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64)
		for {
			n, err := r.Body.Read(buf)
			if n > 0 {
				upstreamGot <- string(buf[:n])
			}
			if err != nil {
				break
			}
		}
		io.WriteString(w, "done")
	}))
	t.Cleanup(upSrv.Close)
	proc, procAddr := newProc(t, handler)
	d := startDriver(t, Config{
		Listener: listener(t, routeConfig(prefixRoute("/", "up")), procFilter(t, procConfigFor("proc", &extprocv3.ProcessingMode{RequestBodyMode: streamed}))),
		Clusters: []*clusterv3.Cluster{staticCluster("up", upSrv.Listener.Addr().String()), staticCluster("proc", procAddr)},
	})
	pr, pw := io.Pipe()
	go func() {
		pw.Write([]byte("one"))
		select {
		case <-firstSeen:
		case <-time.After(testTimeout):
		}
		pw.Write([]byte("two"))
		// The third chunk waits until the upstream got the first two,
		// released in order.
		var got string
		for got != "ONETWO" {
			select {
			case s := <-upstreamGot:
				got += s
			case <-time.After(testTimeout):
				pw.CloseWithError(io.ErrUnexpectedEOF)
				return
			}
		}
		pw.Write([]byte("three"))
		pw.Close()
	}()
	req, _ := http.NewRequest("POST", "http://"+d.Addr()+"/", pr)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(body) != "done" {
		t.Fatalf("status %d body %q", resp.StatusCode, body)
	}
	got := ""
	for len(upstreamGot) > 0 {
		got += <-upstreamGot
	}
	if got != "THREE" {
		t.Errorf("upstream read %q after the first two chunks, want the processed third chunk", got)
	}
	var bodies []string
	for _, r := range proc.received()[0] {
		if b := r.GetRequestBody(); b != nil {
			bodies = append(bodies, string(b.GetBody()))
		}
	}
	if strings.Join(bodies, "") != "onetwothree" {
		t.Errorf("processor got chunks %q", bodies)
	}
}

// TestMetadataForwarding pins that ext_authz dynamic metadata reaches the
// processor under metadata_options.forwarding_namespaces.
func TestMetadataForwarding(t *testing.T) {
	up := newUpstream(t, nil)
	_, authzAddr := newAuthz(t, func(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
		r := okResponse(&authv3.OkHttpResponse{})
		r.DynamicMetadata = &structpb.Struct{Fields: map[string]*structpb.Value{"principal": structpb.NewStringValue("alice")}}
		return r, nil
	})
	proc, procAddr := newProc(t, serveEach(one(echoResponse)))
	pc := procConfigFor("proc", nil)
	pc.MetadataOptions = &extprocv3.MetadataOptions{ForwardingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{authzNamespace}}}
	d := startDriver(t, Config{
		Listener: listener(t, routeConfig(prefixRoute("/", "up")), authzFilter(t, &extauthzv3.ExtAuthz{Services: authzConfigFor("authz").Services}), procFilter(t, pc)),
		Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr()), staticCluster("authz", authzAddr), staticCluster("proc", procAddr)},
	})
	if got := do(t, d, "GET", "/", "", nil); got.Status != 200 {
		t.Fatalf("status %d", got.Status)
	}
	for _, r := range proc.received()[0] {
		md := r.GetMetadataContext().GetFilterMetadata()[authzNamespace]
		if md.GetFields()["principal"].GetStringValue() != "alice" {
			t.Errorf("%s metadata_context = %v, want principal alice", kind(r), r.GetMetadataContext())
		}
		if _, ok := md.GetFields()["ext_authz_duration"]; !ok {
			t.Errorf("%s: ext_authz_duration missing from forwarded metadata", kind(r))
		}
	}
}

// TestExtProcFullDuplexBuffersWholeMessage pins processing_mode.proto
// FULL_DUPLEX_STREAMED case 2: the server may hold the header response until
// it has the whole body, so body chunks must flow before the header
// response arrives.
func TestExtProcFullDuplexBuffersWholeMessage(t *testing.T) {
	handler := func(s *procStream) error {
		var pending []*procsvc.ProcessingRequest
		for {
			r, err := s.Recv()
			if err != nil {
				return nil
			}
			if r.GetRequestHeaders() != nil {
				if err := s.Send(echoResponse(r)); err != nil {
					return nil
				}
				continue
			}
			pending = append(pending, r)
			if b := r.GetResponseBody(); b == nil || !b.GetEndOfStream() {
				continue
			}
			var body []byte
			for _, p := range pending {
				body = append(body, p.GetResponseBody().GetBody()...)
			}
			hdrs := echoResponse(pending[0])
			hdrs.GetResponseHeaders().Response.HeaderMutation = setHeaders("x-seen-bytes", fmt.Sprint(len(body)))
			out := []*procsvc.ProcessingResponse{hdrs, streamedEcho(&procsvc.ProcessingRequest{Request: &procsvc.ProcessingRequest_ResponseBody{
				ResponseBody: &procsvc.HttpBody{Body: bytes.ToUpper(body), EndOfStream: true}}})}
			for _, o := range out {
				if err := s.Send(o); err != nil {
					return nil
				}
			}
			pending = nil
		}
	}
	e := newProcEnv(t, handler, &extprocv3.ProcessingMode{ResponseBodyMode: duplex, ResponseTrailerMode: send}, nil, nil)
	got := do(t, e.d, "GET", "/", "", nil)
	if got.Status != 200 || got.Body != "UPSTREAM OK" || got.Header.Get("X-Seen-Bytes") != "11" {
		t.Errorf("got %d %q x-seen-bytes %q", got.Status, got.Body, got.Header.Get("X-Seen-Bytes"))
	}
	if got.Header.Get("Content-Length") != "" {
		t.Errorf("content-length %q kept in FULL_DUPLEX_STREAMED", got.Header.Get("Content-Length"))
	}
}
