package peers

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"
)

// Bounds on what a Go server keeps. Past either, the oldest records are
// dropped, down to three quarters of the bound (so trimming is amortised:
// the server also serves as a benchmark upstream).
const (
	maxRecorded      = 10000    // requests, and separately tool calls
	maxRecordedBytes = 64 << 20 // request body bytes in all
	maxRecordedBody  = 1 << 20  // body bytes per request
)

// Request is one HTTP request the Go server received, as it arrived.
type Request struct {
	Time   time.Time
	Method string
	Path   string
	Query  string
	Header http.Header
	// Body is the request body (up to 1 MiB; BodyTruncated says if cut).
	Body          []byte
	BodyTruncated bool
}

// Authorization is the request's Authorization header ("" if none).
func (r Request) Authorization() string { return r.Header.Get("Authorization") }

// JSONRPCMethod is the "method" of a JSON-RPC message body, or "" when the
// body is not a single JSON-RPC request or notification.
func (r Request) JSONRPCMethod() string {
	var msg struct {
		Method string `json:"method"`
	}
	if json.Unmarshal(r.Body, &msg) != nil {
		return ""
	}
	return msg.Method
}

// ToolCall is one tools/call the Go server ran.
type ToolCall struct {
	Time      time.Time
	Name      string
	Arguments json.RawMessage
}

// recorder keeps what the server saw, bounded.
type recorder struct {
	mu        sync.Mutex
	requests  []Request
	bodyBytes int // sum of len(Body) over requests
	calls     []ToolCall
}

// wrap records each request (reading its body and handing the handler a
// copy) before passing it on to next.
func (rec *recorder) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		entry := Request{Time: time.Now(), Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, Header: r.Header.Clone()}
		if r.Body != nil {
			body, err := io.ReadAll(r.Body)
			r.Body.Close()
			if err != nil {
				http.Error(w, "reading request body: "+err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			if len(body) > maxRecordedBody {
				entry.Body, entry.BodyTruncated = body[:maxRecordedBody:maxRecordedBody], true
			} else {
				entry.Body = body
			}
		}
		rec.addRequest(entry)
		next.ServeHTTP(w, r)
	})
}

func (rec *recorder) addRequest(r Request) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.requests = append(rec.requests, r)
	rec.bodyBytes += len(r.Body)
	if len(rec.requests) <= maxRecorded && rec.bodyBytes <= maxRecordedBytes {
		return
	}
	drop := 0
	for len(rec.requests)-drop > maxRecorded*3/4 || rec.bodyBytes > maxRecordedBytes*3/4 {
		rec.bodyBytes -= len(rec.requests[drop].Body)
		drop++
	}
	rec.requests = slices.Delete(rec.requests, 0, drop)
}

func (rec *recorder) recordCall(name string, args json.RawMessage) {
	c := ToolCall{Time: time.Now(), Name: name, Arguments: slices.Clone(args)}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.calls = append(rec.calls, c)
	if len(rec.calls) > maxRecorded {
		rec.calls = slices.Delete(rec.calls, 0, len(rec.calls)-maxRecorded*3/4)
	}
}

func (rec *recorder) snapshot() ([]Request, []ToolCall) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return slices.Clone(rec.requests), slices.Clone(rec.calls)
}

func (rec *recorder) reset() {
	rec.mu.Lock()
	rec.requests, rec.calls, rec.bodyBytes = nil, nil, 0
	rec.mu.Unlock()
}
