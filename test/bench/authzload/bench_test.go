package main

import (
	"context"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/airlock-mcp/airlock/extauthz"
)

// benchWorkload is the driver's pool (100 users) against an in-process
// airlock with the default policy.
func benchWorkload(b *testing.B) (*Workload, *extauthz.Authorizer, string) {
	b.Helper()
	iss := testIssuer(b)
	g := startGateway(b, iss)
	users, err := MintUsers(iss, 100, benchResource, benchScope)
	if err != nil {
		b.Fatal(err)
	}
	shape := testShape
	shape.Requests = 1000
	w, err := NewWorkload(users, shape)
	if err != nil {
		b.Fatal(err)
	}
	return w, g.Authorizer, g.AuthzAddr.String()
}

// BenchmarkAirlockCheck is airlock's decision pipeline without gRPC: each
// op decodes a CheckRequest and runs Authorizer.Check on it, as the gRPC
// adapter does. "fresh" makes every call new (the driver's default),
// "repeat" replays the pool (decision cache hits after the first pass).
// Profile it with -cpuprofile to see where a Check's time goes.
func BenchmarkAirlockCheck(b *testing.B) {
	w, a, _ := benchWorkload(b)
	for i := range w.Items { // warm the token cache, as a running gateway has it
		var cr authv3.CheckRequest
		if err := unmarshalItem(w.Items[i], &cr); err != nil {
			b.Fatal(err)
		}
		if r := a.Check(context.Background(), extauthz.FromCheckRequest(&cr)); r.Status != 200 {
			b.Fatalf("item %d: %d %s", i, r.Status, r.Reason)
		}
	}
	for _, fresh := range []bool{true, false} {
		name := map[bool]string{true: "fresh", false: "repeat"}[fresh]
		b.Run(name, func(b *testing.B) {
			w.Fresh = fresh
			var next atomic.Int64
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				buf := make([]byte, 0, 4096)
				for pb.Next() {
					it := &w.Items[next.Add(1)%int64(len(w.Items))]
					var cr authv3.CheckRequest
					if err := unmarshalItem(Item{Raw: w.encode(it, buf)}, &cr); err != nil {
						b.Error(err)
						return
					}
					if r := a.Check(context.Background(), extauthz.FromCheckRequest(&cr)); r.Status != 200 {
						b.Errorf("denied: %d %s", r.Status, r.Reason)
						return
					}
				}
			})
		})
	}
}

// BenchmarkAirlockCheckGRPC is the same over loopback gRPC (client and
// server in one process), as the driver sends it.
func BenchmarkAirlockCheckGRPC(b *testing.B) {
	w, _, addr := benchWorkload(b)
	w.Fresh = true
	benchGRPC(b, addr, w, ExpectAirlockAllow{Credential: "Bearer " + testSecret})
}

// BenchmarkNoopCheckGRPC is the no-op server over the same path: the
// gRPC and protobuf share of BenchmarkAirlockCheckGRPC.
func BenchmarkNoopCheckGRPC(b *testing.B) {
	benchGRPC(b, serveLoopback(b, newNoopGRPC()), testWorkload(b), ExpectOK{})
}

func benchGRPC(b *testing.B, addr string, w *Workload, exp Expect) {
	conns := dialTest(b, addr, 4)
	var next atomic.Int64
	b.SetParallelism(32) // 32 × GOMAXPROCS calls in flight
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		resp := &authv3.CheckResponse{}
		buf := make([]byte, 0, 4096)
		for pb.Next() {
			i := next.Add(1)
			it := &w.Items[i%int64(len(w.Items))]
			if err := call(context.Background(), conns[i%int64(len(conns))], w.encode(it, buf), it, resp, exp); err != nil {
				b.Errorf("%v", err)
				return
			}
		}
	})
}

// BenchmarkPeerPolicy is the peer's Rego (test/bench/peer with airlock's
// decision.rego) on the input opa-envoy-plugin builds, without the
// plugin's gRPC and input conversion: the policy share of a peer Check.
// Like the plugin, it has no io.jwt cache, so every token is verified.
func BenchmarkPeerPolicy(b *testing.B) {
	iss := testIssuer(b)
	pq := peerPolicy(b, iss)
	users, err := MintUsers(iss, 100, benchResource, benchScope)
	if err != nil {
		b.Fatal(err)
	}
	shape := testShape
	shape.Requests = 1000
	w, err := NewWorkload(users, shape)
	if err != nil {
		b.Fatal(err)
	}
	inputs := make([]ast.Value, len(w.Items))
	for i, it := range w.Items {
		var cr authv3.CheckRequest
		if err := unmarshalItem(it, &cr); err != nil {
			b.Fatal(err)
		}
		if inputs[i], err = ast.InterfaceToValue(pluginInput(b, &cr)); err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := next.Add(1) % int64(len(inputs))
			rs, err := pq.Eval(context.Background(), rego.EvalParsedInput(inputs[i]))
			if err != nil || len(rs) != 1 {
				b.Errorf("eval: %v (%d results)", err, len(rs))
				return
			}
			if res, _ := rs[0].Expressions[0].Value.(map[string]any); res["allowed"] != true {
				b.Errorf("not allowed: %v", res)
				return
			}
		}
	})
}
