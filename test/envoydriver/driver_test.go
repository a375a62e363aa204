package envoydriver

import (
	"io"
	"net/http"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
)

// TestClose pins that Close ends in-flight streams and stops the listener.
func TestClose(t *testing.T) {
	started := make(chan struct{})
	up := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		close(started)
		<-r.Context().Done()
	})
	d, err := New(Config{Listener: listener(t, routeConfig(prefixRoute("/", "up"))), Clusters: []*clusterv3.Cluster{staticCluster("up", up.addr())}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get("http://" + d.Addr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	<-started
	closed := make(chan error, 1)
	go func() { closed <- d.Close() }()
	select {
	case <-closed:
	case <-time.After(testTimeout):
		t.Fatal("Close did not return")
	}
	if _, err := io.ReadAll(resp.Body); err == nil {
		t.Error("in-flight stream ended cleanly; Close should abort it")
	}
	if _, err := client.Get("http://" + d.Addr() + "/"); err == nil {
		t.Error("listener still accepts after Close")
	}
}
