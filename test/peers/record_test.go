package peers

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestRecorderBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		n         int
		bodySize  int
		wantCount int
	}{
		{"under both bounds", 100, 10, 100},
		{"count bound", maxRecorded + 1, 10, maxRecorded * 3 / 4},
		{"bytes bound", 65, 1 << 20, 48},
	}
	for _, tc := range tests {
		rec := &recorder{}
		for i := range tc.n {
			body := bytes.Repeat([]byte{'x'}, tc.bodySize)
			body[0] = byte(i)
			rec.addRequest(Request{Body: body})
			rec.recordCall("echo", nil)
		}
		reqs, calls := rec.snapshot()
		if len(reqs) != tc.wantCount {
			t.Errorf("%s: kept %d requests, want %d", tc.name, len(reqs), tc.wantCount)
		}
		if len(reqs) > 0 && reqs[len(reqs)-1].Body[0] != byte(tc.n-1) {
			t.Errorf("%s: the newest request was dropped", tc.name)
		}
		total := 0
		for _, r := range reqs {
			total += len(r.Body)
		}
		if total != rec.bodyBytes || total > maxRecordedBytes {
			t.Errorf("%s: body bytes %d, tracked %d, bound %d", tc.name, total, rec.bodyBytes, maxRecordedBytes)
		}
		if len(calls) > maxRecorded || len(calls) == 0 {
			t.Errorf("%s: kept %d tool calls", tc.name, len(calls))
		}
	}
}

func TestRecorderWrapPassesBody(t *testing.T) {
	t.Parallel()
	rec := &recorder{}
	var seen string
	h := rec.wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		seen = string(b)
	}))
	big := strings.Repeat("y", maxRecordedBody+5)
	for _, body := range []string{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, big} {
		req := httptest.NewRequest(http.MethodPost, "/mcp?x=1", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer upstream")
		h.ServeHTTP(httptest.NewRecorder(), req)
		if seen != body {
			t.Errorf("handler saw %d body bytes, want %d", len(seen), len(body))
		}
	}
	reqs, _ := rec.snapshot()
	if len(reqs) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(reqs))
	}
	r := reqs[0]
	if r.Method != http.MethodPost || r.Path != "/mcp" || r.Query != "x=1" || r.Authorization() != "Bearer upstream" ||
		r.JSONRPCMethod() != "ping" || r.BodyTruncated {
		t.Errorf("first record = %+v", r)
	}
	if !reqs[1].BodyTruncated || len(reqs[1].Body) != maxRecordedBody || reqs[1].JSONRPCMethod() != "" {
		t.Errorf("big body: truncated %v, %d bytes kept", reqs[1].BodyTruncated, len(reqs[1].Body))
	}
}
