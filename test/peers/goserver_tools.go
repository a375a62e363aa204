package peers

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// Fake secrets returned by the Go server's get_secret_config tool and its
// secrets://config resource, for masking tests. None of them is real; the
// AWS pair and the JWT are the vendors' documented examples.
const (
	FakeAWSAccessKeyID     = "AKIAIOSFODNN7EXAMPLE"
	FakeAWSSecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	FakeGitHubToken        = "ghp_aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789"
	FakeJWT                = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
	FakeDBPassword         = "hunter2-not-a-real-password"
	FakeSMTPPassword       = "correct-horse-battery-staple"
)

// FakeSecrets lists every fake secret above.
var FakeSecrets = []string{FakeAWSAccessKeyID, FakeAWSSecretAccessKey, FakeGitHubToken, FakeJWT, FakeDBPassword, FakeSMTPPassword}

// SecretConfigEnvText is the first text content of get_secret_config: an
// environment file with credentials in it.
const SecretConfigEnvText = "# deploy environment\n" +
	"AWS_ACCESS_KEY_ID=" + FakeAWSAccessKeyID + "\n" +
	"AWS_SECRET_ACCESS_KEY=" + FakeAWSSecretAccessKey + "\n" +
	"GITHUB_TOKEN=" + FakeGitHubToken + "\n" +
	"SERVICE_JWT=" + FakeJWT + "\n" +
	"LOG_LEVEL=info\n"

// SecretConfigJSONText is the second text content of get_secret_config: a
// JSON document (as text) with "password" fields at two depths.
const SecretConfigJSONText = `{"service":"billing","database":{"host":"db.internal","port":5432,"user":"billing","password":"` +
	FakeDBPassword + `"},"smtp":{"host":"smtp.internal","password":"` + FakeSMTPPassword + `"},"replicas":3}`

// Go server tool names.
const (
	ToolEcho             = "echo"
	ToolSearchIssues     = "search_issues"
	ToolDeleteRepository = "delete_repository"
	ToolGetSecretConfig  = "get_secret_config"
	ToolCountSlowly      = "count_slowly"
)

// Go server resources and prompts.
const (
	ResourceReadme  = "docs://readme"
	ResourceSecrets = "secrets://config"
	PromptTriage    = "triage_issue"
)

type echoIn struct {
	Text string `json:"text" jsonschema:"the text to send back"`
}

type searchIn struct {
	Query string `json:"query" jsonschema:"words to look for in issue titles"`
	Repo  string `json:"repo,omitempty" jsonschema:"owner/name of the repository (default acme/widgets)"`
	Limit int    `json:"limit,omitempty" jsonschema:"most issues to return (default 3, at most 10)"`
}

// Issue is one search_issues result.
type Issue struct {
	Number int    `json:"number"`
	Title  string `json:"title"`
	State  string `json:"state"`
	Repo   string `json:"repo"`
}

type searchOut struct {
	Issues []Issue `json:"issues"`
}

type deleteIn struct {
	Repo string `json:"repo" jsonschema:"owner/name of the repository to delete"`
}

type countIn struct {
	Count   int `json:"count,omitempty" jsonschema:"how far to count (default 3, at most 50)"`
	DelayMS int `json:"delay_ms,omitempty" jsonschema:"milliseconds between numbers (default 100, at most 5000)"`
}

// addTools registers the Go server's tools, resources and prompts on srv;
// record is called with every tool call before it runs.
func addTools(srv *mcp.Server, record func(name string, args json.RawMessage)) {
	yes := true
	mcp.AddTool(srv, &mcp.Tool{
		Name:        ToolEcho,
		Description: "Returns its text argument unchanged.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true, IdempotentHint: true},
	}, func(_ context.Context, req *mcp.CallToolRequest, in echoIn) (*mcp.CallToolResult, any, error) {
		record(req.Params.Name, req.Params.Arguments)
		return textResult(in.Text), nil, nil
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name:        ToolSearchIssues,
		Description: "Searches a repository's issues by title.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(_ context.Context, req *mcp.CallToolRequest, in searchIn) (*mcp.CallToolResult, searchOut, error) {
		record(req.Params.Name, req.Params.Arguments)
		return nil, searchIssues(in), nil
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name:        ToolDeleteRepository,
		Description: "Deletes a repository and everything in it. Cannot be undone.",
		Annotations: &mcp.ToolAnnotations{DestructiveHint: &yes},
	}, func(_ context.Context, req *mcp.CallToolRequest, in deleteIn) (*mcp.CallToolResult, any, error) {
		record(req.Params.Name, req.Params.Arguments)
		if in.Repo == "" {
			return nil, nil, fmt.Errorf("repo is required")
		}
		return textResult("repository " + in.Repo + " deleted"), nil, nil
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name:        ToolGetSecretConfig,
		Description: "Returns the service's deployment configuration, credentials included.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(_ context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, any, error) {
		record(req.Params.Name, req.Params.Arguments)
		return &mcp.CallToolResult{Content: []mcp.Content{
			&mcp.TextContent{Text: SecretConfigEnvText},
			&mcp.TextContent{Text: SecretConfigJSONText},
		}}, nil, nil
	})

	mcp.AddTool(srv, &mcp.Tool{
		Name: ToolCountSlowly,
		Description: "Counts from 1 to count, pausing delay_ms between numbers; sends a progress " +
			"notification per number when the call carries a progress token.",
		Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true},
	}, func(ctx context.Context, req *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, any, error) {
		record(req.Params.Name, req.Params.Arguments)
		return countSlowly(ctx, req, in)
	})

	srv.AddResource(&mcp.Resource{URI: ResourceReadme, Name: "readme", MIMEType: "text/markdown",
		Description: "What this server is."},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{
				URI: req.Params.URI, MIMEType: "text/markdown",
				Text: "# airlock test server\n\nAn MCP server for airlock's end-to-end tests.\n",
			}}}, nil
		})
	srv.AddResource(&mcp.Resource{URI: ResourceSecrets, Name: "secret-config", MIMEType: "application/json",
		Description: "The deployment configuration, credentials included."},
		func(_ context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{
				{URI: req.Params.URI, MIMEType: "text/plain", Text: SecretConfigEnvText},
				{URI: req.Params.URI, MIMEType: "application/json", Text: SecretConfigJSONText},
			}}, nil
		})

	srv.AddPrompt(&mcp.Prompt{Name: PromptTriage, Description: "Asks for a triage of one issue.",
		Arguments: []*mcp.PromptArgument{{Name: "number", Description: "the issue number", Required: true}}},
		func(_ context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user",
				Content: &mcp.TextContent{Text: "Triage issue #" + req.Params.Arguments["number"] + ": label it and say who should own it."}}}}, nil
		})
}

// textResult is a tool result with one text content.
func textResult(text string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: text}}}
}

// issueTitles are the titles search_issues searches.
var issueTitles = []string{
	"Login fails with expired token",
	"Add dark mode to the settings page",
	"Token refresh races with logout",
	"Crash when the config file is empty",
	"Document the token exchange flow",
}

func searchIssues(in searchIn) searchOut {
	repo := in.Repo
	if repo == "" {
		repo = "acme/widgets"
	}
	limit := in.Limit
	if limit <= 0 {
		limit = 3
	}
	limit = min(limit, 10)
	out := searchOut{Issues: []Issue{}}
	q := strings.ToLower(in.Query)
	for i, title := range issueTitles {
		if len(out.Issues) == limit {
			break
		}
		if q == "" || strings.Contains(strings.ToLower(title), q) {
			state := "open"
			if i%2 == 1 {
				state = "closed"
			}
			out.Issues = append(out.Issues, Issue{Number: 101 + i, Title: title, State: state, Repo: repo})
		}
	}
	return out
}

func countSlowly(ctx context.Context, req *mcp.CallToolRequest, in countIn) (*mcp.CallToolResult, any, error) {
	count := in.Count
	if count <= 0 {
		count = 3
	}
	count = min(count, 50)
	delay := 100 * time.Millisecond
	if in.DelayMS > 0 {
		delay = time.Duration(min(in.DelayMS, 5000)) * time.Millisecond
	}
	token := req.Params.GetProgressToken()
	numbers := make([]string, 0, count)
	for i := 1; i <= count; i++ {
		if i > 1 {
			select {
			case <-ctx.Done():
				return nil, nil, ctx.Err()
			case <-time.After(delay):
			}
		}
		numbers = append(numbers, fmt.Sprint(i))
		if token != nil {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: token, Progress: float64(i), Total: float64(count),
				Message: fmt.Sprintf("counted %d of %d", i, count),
			})
			if err != nil {
				return nil, nil, fmt.Errorf("sending progress %d of %d: %w", i, count, err)
			}
		}
	}
	return textResult(strings.Join(numbers, " ")), nil, nil
}
