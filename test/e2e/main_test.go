// Package e2e runs airlock end to end: real MCP clients (Go SDK and
// TypeScript SDK) talk through the data path (real Envoy if on PATH, else
// the local stand-in) to real MCP servers (Go SDK and the npm
// server-everything), with tokens from real OIDC issuers over HTTP.
package e2e

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/test/harness"
)

var stack *harness.Stack

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	s, err := harness.Start(ctx, harness.Options{Everything: true, OIDCProvider: true, HoldWindow: 3 * time.Second, PendingTTL: 12 * time.Second})
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: cannot start the stack: %v\n", err)
		os.Exit(1)
	}
	stack = s
	fmt.Fprintf(os.Stderr, "e2e: data path is %s at %s\n", s.DataPath.Kind(), s.BaseURL)
	code := m.Run()
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
