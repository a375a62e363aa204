package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
)

// denyAll answers every Check with a 403: fast, and wrong.
type denyAll struct {
	authv3.UnimplementedAuthorizationServer
}

func (denyAll) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(code.Code_PERMISSION_DENIED), Message: "no"},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status: &typev3.HttpStatus{Code: typev3.StatusCode_Forbidden},
		}},
	}, nil
}

// serveLoopback serves s on a free loopback port for the test's life.
func serveLoopback(t testing.TB, s *grpc.Server) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(l)
	t.Cleanup(s.Stop)
	return l.Addr().String()
}

func testWorkload(t testing.TB) *Workload {
	t.Helper()
	users := []UserToken{{Token: "h." + b64(`{"sub":"user000@acme.example"}`) + ".s", Subject: "user000@acme.example"}}
	w, err := NewWorkload(users, testShape)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func dialTest(t testing.TB, addr string, n int) []*grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conns, err := dial(ctx, addr, n)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeConns(conns) })
	return conns
}

var shortLoad = Load{Conns: 2, Concurrency: 4, Rate: 400, OpenWorkers: 16, Warmup: 100 * time.Millisecond, Duration: 500 * time.Millisecond, CallTimeout: 2 * time.Second}

func TestClosedLoopCountsRightAnswers(t *testing.T) {
	conns := dialTest(t, serveLoopback(t, newNoopGRPC()), 2)
	p := ClosedLoop(context.Background(), conns, testWorkload(t), ExpectOK{}, shortLoad, nil)
	if p.Errors != 0 || p.Requests == 0 {
		t.Fatalf("no-op server: %d requests, %d errors %v", p.Requests, p.Errors, p.ErrorSamples)
	}
	if p.RPS != round1(float64(p.Requests)/0.5) {
		t.Errorf("rps %v is not requests %d over the 0.5s window", p.RPS, p.Requests)
	}
	if l := p.Latency; l.P50 <= 0 || l.P50 > l.P90 || l.P90 > l.P99 || l.P99 > l.Max {
		t.Errorf("latency percentiles out of order: %+v", l)
	}
}

func TestClosedLoopWrongAnswersAreErrors(t *testing.T) {
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, denyAll{})
	conns := dialTest(t, serveLoopback(t, s), 1)
	p := ClosedLoop(context.Background(), conns, testWorkload(t), ExpectOK{}, shortLoad, nil)
	if p.Requests != 0 || p.RPS != 0 {
		t.Errorf("a deny-everything target got %d requests (%v/s) counted as served", p.Requests, p.RPS)
	}
	if p.Errors == 0 || len(p.ErrorSamples) == 0 || !strings.Contains(p.ErrorSamples[0], "PERMISSION_DENIED") {
		t.Errorf("errors %d, samples %v: wrong answers not reported", p.Errors, p.ErrorSamples)
	}
}

func TestOpenLoopKeepsTheRate(t *testing.T) {
	conns := dialTest(t, serveLoopback(t, newNoopGRPC()), 2)
	p := OpenLoop(context.Background(), conns, testWorkload(t), ExpectOK{}, shortLoad, nil)
	if p.Errors != 0 {
		t.Fatalf("errors: %v", p.ErrorSamples)
	}
	// 400/s for 0.5s: the requests due in the window, all answered.
	if p.Requests != 200 {
		t.Errorf("%d requests measured, want the 200 due in the window", p.Requests)
	}
	if p.Service == nil || p.Latency.P50 < p.Service.P50 {
		t.Errorf("latency from the schedule (%+v) must include the service time (%+v)", p.Latency, p.Service)
	}
}

// slowServer takes 20ms per Check on one connection's worth of workers.
type slowServer struct {
	noopServer
}

func (slowServer) Check(ctx context.Context, in *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	time.Sleep(20 * time.Millisecond)
	return okResponse, nil
}

func TestOpenLoopCountsQueueingNotJustServiceTime(t *testing.T) {
	s := grpc.NewServer()
	authv3.RegisterAuthorizationServer(s, slowServer{})
	conns := dialTest(t, serveLoopback(t, s), 1)
	// 2 workers, at least 20ms per call: at most 100/s get through while
	// 200/s are due. Request i (due at i*5ms) cannot be answered before
	// (i+1)*10ms, so its latency from the schedule is at least 5i+10 ms:
	// p99 of the window's requests (i = 20..119) is at least ~600ms,
	// however fast the machine. Measuring from the actual send would
	// report about 20ms.
	l := shortLoad
	l.OpenWorkers, l.Rate = 2, 200
	p := OpenLoop(context.Background(), conns, testWorkload(t), ExpectOK{}, l, nil)
	if p.Errors != 0 {
		t.Fatalf("errors: %v", p.ErrorSamples)
	}
	if p.Requests != 100 {
		t.Errorf("%d requests measured, want the 100 due in the window", p.Requests)
	}
	if p.Latency.P99 < 500 {
		t.Errorf("p99 from the schedule %vms hides the queueing (service p99 %vms)", p.Latency.P99, p.Service.P99)
	}
	if p.RPS > 101 {
		t.Errorf("achieved %v/s, but the target can do at most 100/s", p.RPS)
	}
}

func TestLoadValidate(t *testing.T) {
	if err := shortLoad.validate(); err != nil {
		t.Fatalf("valid load refused: %v", err)
	}
	bad := Load{Conns: 0, Concurrency: 0, Rate: -1, OpenWorkers: 0, Duration: 0, CallTimeout: 0, Warmup: -1}
	err := bad.validate()
	if err == nil {
		t.Fatal("invalid load accepted")
	}
	for _, want := range []string{"conns", "concurrency", "rate", "open-workers", "duration"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %s", err, want)
		}
	}
}
