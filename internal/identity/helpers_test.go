package identity

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/oidcissuer"
)

// resource is the target's resource URI the tests verify tokens for.
const resource = "https://gw.example/mcp/github"

// fakeClock is shared by the issuer (iat/exp) and the verifier (checks,
// backoff, rate limits), so tests move time instead of sleeping.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func startIssuer(t testing.TB, clk *fakeClock, opts oidcissuer.Options) *oidcissuer.Issuer {
	t.Helper()
	opts.Now = clk.Now
	iss, err := oidcissuer.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = iss.Close() })
	return iss
}

// issuerConfig is the config of iss with the given name.
func issuerConfig(name string, iss *oidcissuer.Issuer) Issuer {
	return Issuer{Name: name, URL: iss.URL()}
}

func newVerifier(t testing.TB, clk *fakeClock, opts Options, issuers ...Issuer) *Verifier {
	t.Helper()
	opts.Now = clk.Now
	v, err := New(context.Background(), issuers, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mint(t testing.TB, iss *oidcissuer.Issuer, tok oidcissuer.Token) string {
	t.Helper()
	raw, err := iss.Mint(tok)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// verify calls Verify with a bounded context.
func verify(v *Verifier, raw string, audiences ...string) (*Principal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return v.Verify(ctx, raw, audiences)
}

// verifyFor calls VerifyFor with a bounded context.
func verifyFor(v *Verifier, raw string, audiences []string, issuerAudiences bool) (*Principal, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return v.VerifyFor(ctx, raw, audiences, issuerAudiences)
}

// mustVerify fails the test unless raw verifies for resource.
func mustVerify(t testing.TB, v *Verifier, raw string) *Principal {
	t.Helper()
	p, err := verify(v, raw, resource)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return p
}

// wantReject fails the test unless err is an *Error with reason whose
// Detail contains detail and nothing of the token.
func wantReject(t testing.TB, raw string, err error, reason Reason, detail string) {
	t.Helper()
	e, ok := err.(*Error)
	if !ok {
		t.Fatalf("error = %v (%T), want *Error with reason %s", err, err, reason)
	}
	if e.Reason != reason {
		t.Errorf("reason = %s (%s), want %s", e.Reason, e.Detail, reason)
	}
	if !strings.Contains(e.Detail, detail) {
		t.Errorf("detail = %q, want it to contain %q", e.Detail, detail)
	}
	leaksToken(t, raw, e.Error())
}

// leaksToken fails if msg contains the token or any long segment of it.
func leaksToken(t testing.TB, raw, msg string) {
	t.Helper()
	if raw != "" && strings.Contains(msg, raw) {
		t.Errorf("error message contains the token: %q", msg)
	}
	for _, seg := range strings.Split(raw, ".") {
		if len(seg) >= 16 && strings.Contains(msg, seg) {
			t.Errorf("error message contains a token segment: %q", msg)
		}
	}
}
