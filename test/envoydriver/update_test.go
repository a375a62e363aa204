package envoydriver

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

func rdsConfig(t *testing.T, clusters []*clusterv3.Cluster, routes ...*routev3.Route) Config {
	return Config{Listener: listener(t, nil), Routes: map[string]*routev3.RouteConfiguration{"routes": routeConfig(routes...)}, Clusters: clusters}
}

func TestUpdateUnderLoad(t *testing.T) {
	a := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "A") })
	b := newUpstream(t, func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "B") })
	clusters := []*clusterv3.Cluster{staticCluster("a", a.addr()), staticCluster("b", b.addr())}
	cfgs := []Config{
		rdsConfig(t, clusters, prefixRoute("/", "a")),
		rdsConfig(t, clusters, prefixRoute("/", "b")),
		rdsConfig(t, clusters), // no routes: 404
	}
	want := []string{"200 A", "200 B", "404 "}
	d := startDriver(t, cfgs[0])

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var bad []string
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp, err := client.Get("http://" + d.Addr() + "/x")
				if err != nil {
					mu.Lock()
					bad = append(bad, err.Error())
					mu.Unlock()
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				got := fmt.Sprintf("%d %s", resp.StatusCode, body)
				if got != want[0] && got != want[1] && got != want[2] {
					mu.Lock()
					bad = append(bad, got)
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < 60; i++ {
		n := i % len(cfgs)
		if err := d.Update(cfgs[n]); err != nil {
			t.Fatal(err)
		}
		// Update happens-before the next request: it must see the new config.
		if got := do(t, d, "GET", "/x", "", nil); fmt.Sprintf("%d %s", got.Status, got.Body) != want[n] {
			t.Fatalf("after update %d: got %d %q, want %q", i, got.Status, got.Body, want[n])
		}
	}
	close(stop)
	wg.Wait()
	if len(bad) > 0 {
		t.Errorf("responses under concurrent updates that belong to no configuration: %q", bad)
	}
}

// TestUpdateKeepsInFlightConfig pins that a request keeps the configuration
// it started with while Update swaps routes and clusters.
func TestUpdateKeepsInFlightConfig(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	a := newUpstream(t, func(w http.ResponseWriter, r *http.Request) {
		close(arrived)
		select {
		case <-release:
		case <-time.After(testTimeout):
		}
		io.WriteString(w, "old config")
	})
	d := startDriver(t, rdsConfig(t, []*clusterv3.Cluster{staticCluster("a", a.addr())}, prefixRoute("/", "a")))
	done := make(chan result, 1)
	go func() {
		resp, err := client.Get("http://" + d.Addr() + "/slow")
		if err != nil {
			done <- result{Body: err.Error()}
			return
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		done <- result{Status: resp.StatusCode, Body: string(body)}
	}()
	select {
	case <-arrived:
	case <-time.After(testTimeout):
		t.Fatal("request never reached the upstream")
	}
	if err := d.Update(rdsConfig(t, nil)); err != nil {
		t.Fatal(err)
	}
	if got := do(t, d, "GET", "/slow", "", nil); got.Status != 404 {
		t.Fatalf("new request after Update: status %d, want 404", got.Status)
	}
	close(release)
	if got := <-done; got.Status != 200 || got.Body != "old config" {
		t.Errorf("in-flight request: %d %q, want 200 from the old configuration", got.Status, got.Body)
	}
}

func TestUpdateRejects(t *testing.T) {
	d := startDriver(t, rdsConfig(t, nil))
	cfg := rdsConfig(t, nil)
	cfg.Listener.Address.GetSocketAddress().PortSpecifier = &corev3.SocketAddress_PortValue{PortValue: 1}
	if err := d.Update(cfg); err == nil || !strings.Contains(err.Error(), "listener address cannot change") {
		t.Errorf("port change: %v", err)
	}
	if err := d.Update(Config{Listener: listener(t, nil)}); err == nil {
		t.Error("update with a missing rds route configuration was accepted")
	}
	if got := do(t, d, "GET", "/", "", nil); got.Status != 404 {
		t.Errorf("a rejected update changed the running config: status %d", got.Status)
	}
}
