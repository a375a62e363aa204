package approvals

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// stallWriter is a ResponseWriter whose writes block until released: a
// client that stopped reading.
type stallWriter struct {
	hdr     http.Header
	mu      sync.Mutex
	buf     bytes.Buffer
	writes  int
	stallAt int
	release chan struct{}
}

func (w *stallWriter) Header() http.Header { return w.hdr }
func (w *stallWriter) WriteHeader(int)     {}
func (w *stallWriter) Flush()              {}

func (w *stallWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	w.writes++
	n := w.writes
	w.mu.Unlock()
	if n == w.stallAt {
		<-w.release
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(b)
}

func (w *stallWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// A stream that falls more than the Service's buffer behind is dropped by
// the Service; the handler subscribes again and tells the client to reload.
func TestStreamFallsBehindAndReloads(t *testing.T) {
	f := newInboxFixture(t, nil)
	req := f.open(t, "delete_repository", `{"n":1}`)
	// Writes: retry, reload/subscribed, then the first event stalls.
	w := &stallWriter{hdr: http.Header{}, stallAt: 3, release: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	hr := httptest.NewRequestWithContext(ctx, http.MethodGet, "/airlock/inbox/events", nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.h.stream(w, hr, viewer{Subject: "bob", Groups: []string{"airlock-approvers"}}, time.Time{}, false)
	}()
	waitFor(t, func() bool { return strings.Contains(w.String(), "subscribed") })
	// 1 event stalls the writer, 256 fill the buffer, more overflow it.
	for range 300 {
		if _, _, err := f.g.Open(context.Background(), f.paramsOf(req)); err != nil {
			t.Fatal(err)
		}
	}
	close(w.release)
	waitFor(t, func() bool { return strings.Contains(w.String(), `"reason":"fell_behind"`) })
	// The renewed subscription delivers what happens next.
	if _, _, err := f.g.Open(context.Background(), f.paramsOf(req)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		s := w.String()
		return strings.Count(s[strings.Index(s, "fell_behind"):], "event: request.joined") == 1
	})
	cancel()
	<-done
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
