// Package e2e runs airlock end to end: real MCP clients (Go SDK and
// TypeScript SDK) talk through the data path (real Envoy if on PATH, else
// the local stand-in) to real MCP servers (Go SDK and the npm
// server-everything), with tokens from real OIDC issuers over HTTP.
package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/xds"
)

var stack *harness.Stack

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	// The shared stack runs as production does: the data path fed over
	// ADS, playing the oldest Envoy airlock supports (1.34 runs no ext_proc
	// on local replies, so nothing recorded may depend on it).
	s, err := harness.Start(ctx, harness.Options{ADS: true, EnvoyVersion: xds.MinEnvoyVersion, Everything: true, OIDCProvider: true, HoldWindow: 3 * time.Second, PendingTTL: 12 * time.Second})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the stack: %v\n", err)
		os.Exit(1)
	}
	stack = s
	fmt.Fprintf(os.Stderr, "e2e: data path is %s at %s\n", s.DataPath.Kind(), s.BaseURL)
	code := m.Run()
	if adv != nil {
		adv.Close()
	}
	closeRestartStack()
	s.Close()
	os.Exit(code)
}

func token(t *testing.T, sub, target string) string {
	t.Helper()
	tok, err := stack.Token(sub, target)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The attack suite's stack (attack_test.go), started on first use: the data
// path fed over ADS (as production runs it) to the Go SDK servers, the
// TypeScript SDK server (which decodes bodies by charset and
// Content-Encoding) and two compressing Go servers.
var (
	advOnce sync.Once
	adv     *harness.Stack
	advErr  error
)

// advMaxBody is the attack stack's body limit: above Envoy's default
// 1 MiB connection buffer, so a body between the two must still be
// decided and forwarded.
const advMaxBody = 3 << 20

func adversarial(t *testing.T) *harness.Stack {
	t.Helper()
	advOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		adv, advErr = harness.Start(ctx, harness.Options{
			ADS: true, TSServer: true, GzipServers: true, NoScopeTarget: true, SecondIssuer: true,
			IssuerAudiences: []string{issuerAudience},
			MaxRequestBytes: advMaxBody,
			HoldWindow:      time.Second, PendingTTL: 5 * time.Minute,
			PolicyData: map[string]string{
				"airlock/rules/tsserver/data.yaml":    advPromptRules,
				"airlock/rules/tsstateless/data.yaml": advPromptRules,
			},
		})
		if advErr == nil {
			fmt.Fprintf(os.Stderr, "e2e: attack data path is %s at %s\n", adv.DataPath.Kind(), adv.BaseURL)
		}
	})
	if advErr != nil {
		t.Fatalf("cannot start the attack stack: %v", advErr)
	}
	return adv
}

// issuerAudience is the okta issuer's own audience in the attack stack
// (Okta's default authorization server puts it in every token).
const issuerAudience = "api://default"

// advPromptRules deny one prompt of the TypeScript server, so completing
// its argument must be denied too.
const advPromptRules = "prompts:\n  deny: [\"secret_prompt\"]\n"
