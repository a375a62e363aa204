package main

import (
	"context"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/cputime"
	"github.com/airlock-mcp/airlock/internal/grants/grantstest"
	"github.com/airlock-mcp/airlock/internal/serve"
	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// benchAudit is the audit backend of the bench's full configuration.
type benchAudit string

const (
	// auditSpool records into the ClickHouse spool. Nothing answers at the
	// configured address, so rows stay spooled: the per-Check cost is
	// what it is with ClickHouse up (recording never waits for shipping).
	auditSpool benchAudit = "spool"
	// auditEmbedded records into the embedded store (no ClickHouse).
	auditEmbedded benchAudit = "embedded"
)

// benchLiveGrants is how many live grants the bench's grant store holds,
// as issue 19's default configuration has.
const benchLiveGrants = 10000

// writeFullConfig writes the airlock.yaml of issue 19's default
// configuration for the in-process benchmarks: the driver's route and
// policy, with the decision log on (file sink), audit recording on (the
// ClickHouse spool or the embedded store), a masking profile next to the
// built-ins and a file grant store holding benchLiveGrants live grants.
func writeFullConfig(tb testing.TB, dir, issuerURL string, au benchAudit) string {
	tb.Helper()
	grantsDir := filepath.Join(dir, "grants")
	grantstest.WriteLive(tb, grantsDir, benchLiveGrants, benchTarget, issuerURL)
	c := serveConfig{Dir: dir, Authz: "127.0.0.1:0", IssuerURL: issuerURL, PolicyDir: repoPolicies, Full: true, GrantsDir: grantsDir}
	if au == auditSpool {
		// Port 1 on loopback: refused at once, rows stay in the spool.
		c.ClickHouse, c.Database = "127.0.0.1:1", "airlock"
	}
	path, err := c.write()
	if err != nil {
		tb.Fatal(err)
	}
	return path
}

// startFullGateway runs airlock's serve wiring in process with
// writeFullConfig's configuration.
func startFullGateway(tb testing.TB, iss *oidcissuer.Issuer, au benchAudit) *serve.Gateway {
	tb.Helper()
	if err := os.Setenv(credentialEnv, testSecret); err != nil { // t.Setenv is not for benchmarks
		tb.Fatal(err)
	}
	cfg, err := config.Load(writeFullConfig(tb, tb.TempDir(), iss.URL(), au))
	if err != nil {
		tb.Fatalf("the bench's full airlock.yaml does not load: %v", err)
	}
	g, err := serve.Start(context.Background(), cfg, serve.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	// The collector's policy `airlock serve` runs with (serve.Run sets it,
	// serve.Start does not): the heap target of the config, unless GOGC
	// is set.
	prev := debug.SetGCPercent(100)
	debug.SetGCPercent(prev)
	stopGC, _ := serve.TuneGC(uint64(max(cfg.Limits.HeapTargetBytes, 0)))
	tb.Cleanup(func() { stopGC(); debug.SetGCPercent(prev) })
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		g.Stop(ctx)
	})
	if g.Decisions == nil {
		tb.Fatal("the decision log is off")
	}
	return g
}

// benchWorkload is the driver's pool (100 users) against an in-process
// airlock with the default policy and the full configuration.
func benchWorkload(b *testing.B, au benchAudit) (*Workload, *extauthz.Authorizer, string) {
	b.Helper()
	iss := testIssuer(b)
	g := startFullGateway(b, iss, au)
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
// adapter does, with issue 19's full default configuration
// (writeFullConfig). "fresh" makes every call new (the driver's default),
// "repeat" replays the pool (decision cache hits after the first pass);
// both record into the ClickHouse spool, "fresh-embedded" into the
// embedded store instead.
// Profile it with -cpuprofile to see where a Check's time goes.
func BenchmarkAirlockCheck(b *testing.B) {
	for _, au := range []benchAudit{auditSpool, auditEmbedded} {
		w, a, _ := benchWorkload(b, au)
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
			if au == auditEmbedded && !fresh {
				continue
			}
			name := map[bool]string{true: "fresh", false: "repeat"}[fresh]
			if au == auditEmbedded {
				name += "-embedded"
			}
			b.Run(name, func(b *testing.B) {
				w.Fresh = fresh
				var next atomic.Int64
				b.ReportAllocs()
				b.ResetTimer()
				defer reportProcessCPU(b)()
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
}

// BenchmarkAirlockCheckGRPC is the same over loopback gRPC (client and
// server in one process), as the driver sends it.
func BenchmarkAirlockCheckGRPC(b *testing.B) {
	w, _, addr := benchWorkload(b, auditSpool)
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
	defer reportProcessCPU(b)()
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

// reportProcessCPU starts measuring the CPU time of the whole process
// (user + system, every goroutine: the Check's, the decision log's and
// the audit writer's, the collector's) and returns what reports it per
// op as "cpu-µs/op". Unlike ns/op it does not move with how busy the
// machine is, only with the work done. Over gRPC it includes the client.
func reportProcessCPU(b *testing.B) func() {
	start := cputime.Process()
	return func() {
		b.ReportMetric(float64((cputime.Process()-start).Microseconds())/float64(b.N), "cpu-µs/op")
	}
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
