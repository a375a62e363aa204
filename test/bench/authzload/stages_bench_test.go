package main

import (
	"context"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/airlock-mcp/airlock/extauthz"
	"github.com/airlock-mcp/airlock/internal/config"
	"github.com/airlock-mcp/airlock/internal/identity"
	"github.com/airlock-mcp/airlock/internal/mcp"
	"github.com/airlock-mcp/airlock/internal/policy"
	"github.com/airlock-mcp/airlock/internal/policy/rego"
)

// The stage benchmarks split BenchmarkAirlockCheck along airlock's Check
// pipeline, on the bench's own requests: token verification (cached, as
// a running gateway has it), MCP parsing, and the Rego decision. They say
// where a Check's time goes without reading a continuation-heavy profile.

type stageFixture struct {
	reqs       []*extauthz.Request
	tokens     []string
	verifier   *identity.Verifier
	policy     *rego.Store
	principals []*identity.Principal
}

func newStageFixture(b *testing.B) *stageFixture {
	b.Helper()
	iss := testIssuer(b)
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
	ver, err := identity.New(context.Background(), []config.Issuer{{
		Name: "okta", URL: iss.URL(), Audiences: []string{"api://default"}, Algorithms: []string{"RS256", "ES256"},
	}}, identity.Options{CacheSize: 10000})
	if err != nil {
		b.Fatal(err)
	}
	store, err := rego.NewStore(repoPolicies, "", nil)
	if err != nil {
		b.Fatal(err)
	}
	f := &stageFixture{verifier: ver, policy: store}
	for _, it := range w.Items {
		var cr authv3.CheckRequest
		if err := unmarshalItem(it, &cr); err != nil {
			b.Fatal(err)
		}
		r := extauthz.FromCheckRequest(&cr)
		tok := strings.TrimPrefix(r.Headers["authorization"], "Bearer ")
		p, err := ver.Verify(context.Background(), tok, []string{benchResource})
		if err != nil {
			b.Fatal(err)
		}
		f.reqs, f.tokens, f.principals = append(f.reqs, r), append(f.tokens, tok), append(f.principals, p)
	}
	return f
}

func (f *stageFixture) input(i int) *policy.Input {
	r := f.reqs[i]
	call, perr := mcp.ParseHTTP(&mcp.HTTPRequest{Method: r.Method, Path: r.Path, Headers: r.Headers, Body: r.Body})
	if perr != nil {
		panic(perr.Message)
	}
	m := call.Messages[0]
	hs := map[string]string{}
	for k, v := range r.Headers {
		if k != "authorization" && !strings.HasPrefix(k, ":") {
			hs[k] = v
		}
	}
	return &policy.Input{
		Principal: f.principals[i],
		Target:    policy.TargetInput{Name: benchTarget, Resource: benchResource, ScopesRequired: []string{benchScope}},
		MCP: policy.MessageInput{Method: m.Method, Kind: string(m.Kind), ID: m.ID, Tool: m.Tool, Arguments: m.Arguments,
			ProtocolVersion: call.ProtocolVersion, SessionID: call.SessionID},
		Request: policy.RequestInput{Method: r.Method, Path: r.Path, Host: r.Host, Headers: hs},
	}
}

func runStage(b *testing.B, n int, fn func(i int) error) {
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := fn(int(next.Add(1) % int64(n))); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkStageVerifyCached(b *testing.B) {
	f := newStageFixture(b)
	runStage(b, len(f.tokens), func(i int) error {
		_, err := f.verifier.Verify(context.Background(), f.tokens[i], []string{benchResource})
		return err
	})
}

func BenchmarkStageParseMCP(b *testing.B) {
	f := newStageFixture(b)
	runStage(b, len(f.reqs), func(i int) error {
		r := f.reqs[i]
		if _, perr := mcp.ParseHTTP(&mcp.HTTPRequest{Method: r.Method, Path: r.Path, Headers: r.Headers, Body: r.Body}); perr != nil {
			return perr
		}
		return nil
	})
}

func BenchmarkStagePolicyInput(b *testing.B) {
	f := newStageFixture(b)
	ins := make([]*policy.Input, len(f.reqs))
	for i := range ins {
		ins[i] = f.input(i)
	}
	now := ins[0].Time
	runStage(b, len(ins), func(i int) error {
		_, err := rego.InputValue(ins[i], now)
		return err
	})
}

// BenchmarkStagePolicyEvaluate: "fresh" gives every call a new cursor
// argument (a decision cache miss), "repeat" replays the pool's inputs.
func BenchmarkStagePolicyEvaluate(b *testing.B) {
	f := newStageFixture(b)
	ins := make([]*policy.Input, len(f.reqs))
	for i := range ins {
		ins[i] = f.input(i)
	}
	for _, fresh := range []bool{true, false} {
		b.Run(map[bool]string{true: "fresh", false: "repeat"}[fresh], func(b *testing.B) {
			var seq atomic.Int64
			runStage(b, len(ins), func(i int) error {
				in := ins[i]
				if fresh {
					cp := *in
					cp.MCP.Arguments = strconv.AppendInt([]byte(`{"owner":"acme","repo":"payments-1","after":"c`), seq.Add(1), 10)
					cp.MCP.Arguments = append(cp.MCP.Arguments, `"}`...)
					in = &cp
				}
				d, err := f.policy.Evaluate(context.Background(), in)
				if err == nil && d.Outcome != policy.OutcomeAllow {
					b.Errorf("outcome %s: %s", d.Outcome, d.Reason)
				}
				return err
			})
		})
	}
}
