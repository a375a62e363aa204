package peers

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const tsSecret = "ts-upstream-secret-for-tests"

// The TypeScript server lists its tools, runs them and records what it ran
// and received; it refuses (and records) a request without its credential.
func TestTSServerRecordsWhatItRan(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	s, err := StartTSServer(ctx, TSServerOptions{RequireBearer: tsSecret})
	if err != nil {
		t.Fatalf("StartTSServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	cs, err := ConnectGoClient(ctx, s.URL(), tsSecret)
	if err != nil {
		t.Fatalf("ConnectGoClient: %v\n%s", err, s.Output())
	}
	defer cs.Close()
	tools, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range tools.Tools {
		names = append(names, tool.Name)
	}
	if diff := cmp.Diff(slices.Sorted(slices.Values(TSServerTools)), slices.Sorted(slices.Values(names))); diff != "" {
		t.Errorf("tools (-want +got):\n%s", diff)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "repo.delete", Arguments: map[string]any{"target": "acme/prod"}}); err != nil {
		t.Fatal(err)
	}
	calls, err := s.ToolCalls()
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].Name != "repo.delete" || !strings.Contains(string(calls[0].Arguments), "acme/prod") {
		t.Errorf("tool records %+v, want the one repo.delete call", calls)
	}

	s.Reset()
	resp, err := http.Post(s.URL()+"/admin/secrets", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqs, err := s.HTTPRequests()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 401 || len(reqs) != 1 || reqs[0].Path != "/mcp/admin/secrets" || reqs[0].Credential || reqs[0].Authorization {
		t.Errorf("no credential: status %d, records %+v", resp.StatusCode, reqs)
	}
	if calls, _ := s.ToolCalls(); len(calls) != 0 {
		t.Errorf("Reset kept %d tool records", len(calls))
	}
}

// The premise of airlock's charset and encoding rules: the TypeScript SDK's
// Express app decodes a body by the charset and Content-Encoding the request
// names, so "+AGQ-elete_all" in UTF-7 runs delete_all, and a gzip body runs
// what it holds.
func TestTSServerDecodesCharsetAndEncoding(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 45*time.Second)
	s, err := StartTSServer(ctx, TSServerOptions{RequireBearer: tsSecret})
	if err != nil {
		t.Fatalf("StartTSServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })

	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"removeUser","arguments":{}}}`))
	zw.Close()
	for _, tc := range []struct {
		name, contentType, encoding string
		body                        []byte
		want                        string
	}{
		{"utf-7 name", "application/json; charset=utf-7", "",
			[]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"+AGQ-elete_all","arguments":{}}}`), "delete_all"},
		{"gzip body", "application/json", "gzip", gz.Bytes(), "removeUser"},
	} {
		s.Reset()
		req, _ := http.NewRequestWithContext(ctx, "POST", s.StatelessURL(), bytes.NewReader(tc.body))
		req.Header.Set("Content-Type", tc.contentType)
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tsSecret)
		if tc.encoding != "" {
			req.Header.Set("Content-Encoding", tc.encoding)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		calls, err := s.ToolCalls()
		if err != nil {
			t.Fatal(err)
		}
		if len(calls) != 1 || calls[0].Name != tc.want {
			t.Errorf("%s: status %d %s; tool records %+v, want %s ran", tc.name, resp.StatusCode, b, calls, tc.want)
		}
	}
}
