package grants

import (
	"context"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/policy"
)

// benchService has one subject with a few grants on the target and many
// other subjects with grants, as a busy gateway would.
func benchService(b *testing.B) (*Service, []string) {
	s, err := New(NewMemStore(), testConfig(), Options{manualExpiry: true})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = s.Close() })
	s.cfg.MaxPendingPerPrincipal = 1 << 20
	ctx := context.Background()
	var mine []string
	for i := range 200 {
		p := openParams("tool"+itoa(i%5), `{"i":`+itoa(i)+`}`, approval(func(a *policy.Approval) {
			a.SingleUse = false
			a.GrantDuration = time.Hour
		}))
		if i%40 != 0 {
			p.Principal.Subject = "user" + itoa(i)
		}
		r, _, err := s.Open(ctx, p)
		if err != nil {
			b.Fatal(err)
		}
		r, err = s.Decide(ctx, r.ID, bob, VerdictApprove, "")
		if err != nil {
			b.Fatal(err)
		}
		if i%40 == 0 {
			mine = append(mine, r.GrantID)
		}
	}
	return s, mine
}

// BenchmarkActive is the grant lookup on every call that policy sees.
func BenchmarkActive(b *testing.B) {
	s, mine := benchService(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		in, _ := s.Active(ctx, "alice", "github", now)
		if len(in) != len(mine) {
			b.Fatalf("%d grants, want %d", len(in), len(mine))
		}
	}
}

func BenchmarkActiveNone(b *testing.B) {
	s, _ := benchService(b)
	ctx := context.Background()
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if in, _ := s.Active(ctx, "nobody", "github", now); len(in) != 0 {
			b.Fatal("grants for nobody")
		}
	}
}

// BenchmarkConsumeTimeBound is marking a call allowed by a time-bound grant.
func BenchmarkConsumeTimeBound(b *testing.B) {
	s, mine := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Consume(ctx, mine[0], "alice"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCanonicalArguments(b *testing.B) {
	raw := []byte(`{"repo":"acme/test","force":true,"paths":["a/b","c/d"],"limits":{"max":100,"ratio":0.25}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := CanonicalArguments(raw); err != nil {
			b.Fatal(err)
		}
	}
}
