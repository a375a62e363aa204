package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/airlock-mcp/airlock/test/harness"
	"github.com/airlock-mcp/airlock/test/peers"
)

// The MCP server returns secrets; straight from the server they are there,
// through airlock the agent sees typed masks — for an SSE response
// (target github) and a JSON one (target jsonapi), in a tool result whose
// text is itself JSON, and in a resource.
func TestSecretsAreMaskedInResponses(t *testing.T) {
	ctx := ctxT(t, 60*time.Second)
	for _, target := range []string{"github", "jsonapi"} {
		t.Run(target, func(t *testing.T) {
			upstream := stack.GoServer
			if target == "jsonapi" {
				upstream = stack.JSONServer
			}
			// The upstream really sends the secrets.
			direct := callSecrets(ctx, t, upstream.URL(), harness.UpstreamSecret)
			for _, s := range peers.FakeSecrets {
				if !strings.Contains(direct, s) {
					t.Fatalf("the test server no longer returns %.6q…; the test proves nothing", s)
				}
			}
			through := callSecrets(ctx, t, stack.TargetURL(target), token(t, "00u-alice", target))
			for _, s := range peers.FakeSecrets {
				if strings.Contains(through, s) {
					t.Errorf("a secret (%.6s…) reached the agent", s)
				}
			}
			// Failures name what is missing, never print the result: it may hold secrets.
			for _, m := range []string{"[MASKED:aws_access_key]", "[MASKED:github_token]", "[MASKED:jwt]"} {
				if !strings.Contains(through, m) {
					t.Errorf("the agent's result (%d bytes) lacks %s", len(through), m)
				}
			}
			if !strings.Contains(through, `"service":"billing"`) {
				t.Errorf("the JSON inside the tool result was not kept intact around the masks")
			}
		})
	}
}

// callSecrets calls get_secret_config and reads secrets://config with the
// Go SDK client and returns all the text it got.
func callSecrets(ctx context.Context, t *testing.T, url, tok string) string {
	t.Helper()
	cs, err := peers.ConnectGoClient(ctx, url, tok)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "get_secret_config", Arguments: map[string]any{}})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, c := range res.Content {
		if tc, ok := c.(*mcp.TextContent); ok {
			b.WriteString(tc.Text)
			b.WriteString("\n")
		}
	}
	rr, err := cs.ReadResource(ctx, &mcp.ReadResourceParams{URI: peers.ResourceSecrets})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range rr.Contents {
		b.WriteString(c.Text)
	}
	return b.String()
}
