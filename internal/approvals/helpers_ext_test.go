package approvals_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/airlock-mcp/airlock/internal/approvals"
	"github.com/airlock-mcp/airlock/internal/approvals/approvalstest"
	"github.com/airlock-mcp/airlock/internal/grants"
)

func startStack(t *testing.T, opts approvalstest.Options) *approvalstest.Stack {
	t.Helper()
	s, err := approvalstest.Start(opts)
	if err != nil {
		t.Fatalf("starting the approvals stack: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("closing the stack: %v", err)
		}
	})
	return s
}

// reply is one API answer.
type reply struct {
	status int
	header http.Header
	body   []byte
}

func (r reply) code() string {
	var e approvals.ErrorBody
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (r reply) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decoding %s: %v", r.body, err)
	}
}

// call sends one API request as who (nil: no token).
func call(t *testing.T, s *approvalstest.Stack, who *approvalstest.Person, method, path, body string) reply {
	t.Helper()
	tok := ""
	if who != nil {
		var err error
		if tok, err = s.Token(*who); err != nil {
			t.Fatal(err)
		}
	}
	return callToken(t, s, tok, method, path, body)
}

func callToken(t *testing.T, s *approvalstest.Stack, tok, method, path, body string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if tok != "" && bytes.Contains(b, []byte(tok)) {
		t.Fatalf("%s %s echoed the bearer token", method, path)
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}
}

func open(t *testing.T, s *approvalstest.Stack, tool, args string) *grants.Request {
	t.Helper()
	r, err := s.Open(context.Background(), approvalstest.Alice, tool, args, "cleanup for OPS-1")
	if err != nil {
		t.Fatalf("opening a request: %v", err)
	}
	return r
}

func person(p approvalstest.Person) *approvalstest.Person { return &p }
