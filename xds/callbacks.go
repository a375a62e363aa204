package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"
)

// callbacks are the Server seen by go-control-plane: they refuse an
// Envoy below MinEnvoyVersion, give a node its snapshot when its first
// stream asks, tell ACKs from NACKs and keep what Status reports.
//
// A NACK (a request whose error_detail is set, answering our last
// response's nonce) is logged with the resources of that response and
// Envoy's error, and counted. On a SotW stream the request's version is
// then set to the rejected version, so the caches do not resend at once
// what was just rejected (Envoy would reject it again, in a loop); the
// rejected response is resent after a backoff or a configuration change
// (retry.go).
type callbacks Server

var _ server.Callbacks = (*callbacks)(nil)

// streamState is what one xDS stream was last sent, per type.
type streamState struct {
	node      string
	cluster   string
	version   string // Envoy version, or VersionUnknown
	delta     bool
	connected time.Time
	sent      map[string]sent
	types     map[string]*typeStats
	acks      *ackState // scoped routes this stream has applied
}

// typeStats is one stream's exchange of one resource type, for Status.
type typeStats struct {
	sentVersion  string
	sentAt       time.Time
	ackedVersion string
	ackedAt      time.Time
	acks, nacks  int
	lastNACK     string
	lastNACKAt   time.Time
	pending      bool // the last response is not answered yet
	streak       int  // consecutive NACKs; 0 after an ACK
	retryAt      time.Time
}

func (st *streamState) stats(typeURL string) *typeStats {
	ts := st.types[typeURL]
	if ts == nil {
		ts = &typeStats{}
		st.types[typeURL] = ts
	}
	return ts
}

type sent struct {
	nonce   string
	version string
	sotw    *discovery.DiscoveryResponse
	delta   *discovery.DeltaDiscoveryResponse
}

func mode(delta bool) string {
	if delta {
		return "delta"
	}
	return "sotw"
}

func (c *callbacks) open(id int64, delta bool) {
	c.streamsMu.Lock()
	c.streams[id] = &streamState{delta: delta, connected: c.now(), sent: map[string]sent{}, types: map[string]*typeStats{}}
	c.streamsMu.Unlock()
	c.metrics.streams.WithLabelValues(mode(delta)).Inc()
}

func (c *callbacks) closed(id int64, delta bool) {
	c.streamsMu.Lock()
	st := c.streams[id]
	delete(c.streams, id)
	ch := c.ackCh
	c.ackCh = make(chan struct{}) // a waiter no longer waits for this Envoy
	c.streamsMu.Unlock()
	close(ch)
	c.metrics.streams.WithLabelValues(mode(delta)).Dec()
	c.holds.Range(func(k, v any) bool { // a NACK whose watch was never made
		if v.(hold).stream == id {
			c.holds.Delete(k)
		}
		return true
	})
	if st == nil {
		return
	}
	if st.node != "" {
		(*Server)(c).nodeLeft(st.node)
	}
}

// Reasons of airlock_xds_refused_total.
const (
	refusedNoNodeID      = "no_node_id"
	refusedBelowFloor    = "envoy_below_floor"
	maxRefusedRemembered = 256
)

// refuse records, logs and counts a refused stream and returns the error
// that ends it.
func (c *callbacks) refuse(node *corev3.Node, ver, reason string, err error) error {
	c.metrics.refused.WithLabelValues(reason).Inc()
	c.log.Error("xDS stream refused", "node", node.GetId(), "cluster", node.GetCluster(), "envoy_version", ver, "reason", reason, "err", err)
	if id := node.GetId(); id != "" {
		c.streamsMu.Lock()
		r := c.refused[id]
		if _, known := c.refused[id]; !known && len(c.refused) >= maxRefusedRemembered {
			for k := range c.refused { // forget one: the list is a diagnostic
				delete(c.refused, k)
				break
			}
		}
		c.refused[id] = RefusedNode{Node: id, Cluster: node.GetCluster(), EnvoyVersion: ver, Reason: err.Error(), At: c.now(), Count: r.Count + 1}
		c.streamsMu.Unlock()
	}
	return grpcstatus.Error(codes.FailedPrecondition, err.Error())
}

// request handles what every request on a stream shares: the node is
// checked and joins on its first request, ACKs and NACKs are counted and
// a NACK is reported. It returns the stream's record of the response a
// NACK rejected (zero when not a NACK) and the NACK's backoff.
func (c *callbacks) request(id int64, node *corev3.Node, typeURL, nonce string, detail error) (sent, time.Duration, error) {
	c.streamsMu.Lock()
	st := c.streams[id]
	if st == nil {
		c.streamsMu.Unlock()
		return sent{}, 0, nil
	}
	join := ""
	if st.node == "" {
		if node.GetId() == "" {
			c.streamsMu.Unlock()
			return sent{}, 0, c.refuse(node, "", refusedNoNodeID, errors.New("xDS request without node.id: every Envoy must name itself"))
		}
		ver, err := envoyVersion(node)
		if err != nil {
			c.streamsMu.Unlock()
			return sent{}, 0, c.refuse(node, ver, refusedBelowFloor, err)
		}
		if ver == VersionUnknown {
			c.log.Warn("xDS client sent no user_agent_build_version: not an Envoy, or one airlock cannot check against its floor",
				"node", node.GetId(), "user_agent", node.GetUserAgentName(), "min_envoy_version", MinEnvoyVersion)
		}
		st.node, st.cluster, st.version = node.GetId(), node.GetCluster(), ver
		join = st.node
	}
	last, ok := st.sent[typeURL]
	answered := ok && nonce != "" && last.nonce == nonce
	var delay time.Duration
	if answered {
		ts := st.stats(typeURL)
		ts.pending = false
		if detail == nil {
			ts.acks++
			ts.streak = 0
			ts.ackedVersion, ts.ackedAt = last.version, c.now()
			ts.retryAt = time.Time{}
		} else {
			ts.nacks++
			ts.streak++
			ts.lastNACK, ts.lastNACKAt = detail.Error(), c.now()
			delay = retryDelay(c.retryBase, c.retryMax, ts.streak)
			ts.retryAt = ts.lastNACKAt.Add(delay)
		}
	}
	nodeID := st.node
	c.streamsMu.Unlock()

	if join != "" {
		(*Server)(c).nodeJoined(join)
	}
	if detail == nil {
		return sent{}, 0, nil
	}
	c.metrics.nacks.WithLabelValues(typeURL).Inc()
	var names []string
	var version string
	if answered {
		names = last.names()
		version = last.version
	}
	c.log.Warn("xDS NACK: Envoy rejected a response and kept its previous configuration",
		"node", nodeID, "type_url", typeURL, "nonce", nonce, "version", version,
		slog.Group("resources", "count", len(names), "names", summarize(names)), "envoy_error", detail.Error(),
		"retry_in", delay)
	if !answered {
		return sent{}, 0, nil
	}
	return last, delay, nil
}

// names lists the resources of a sent response; decoded only for a NACK.
func (s sent) names() []string {
	var out []string
	if s.delta != nil {
		for _, r := range s.delta.GetResources() {
			out = append(out, r.GetName())
		}
		return out
	}
	for _, a := range s.sotw.GetResources() {
		m, err := a.UnmarshalNew()
		if err != nil {
			out = append(out, "<undecodable "+a.GetTypeUrl()+">")
			continue
		}
		out = append(out, cache.GetResourceName(m))
	}
	return out
}

// summarize keeps a NACK log line short when a response held many resources.
func summarize(names []string) string {
	const max = 10
	if len(names) <= max {
		return strings.Join(names, ",")
	}
	return strings.Join(names[:max], ",") + ",…"
}

func (c *callbacks) record(id int64, typeURL string, s sent) {
	c.streamsMu.Lock()
	if st := c.streams[id]; st != nil {
		st.sent[typeURL] = s
		ts := st.stats(typeURL)
		ts.sentVersion, ts.sentAt, ts.pending = s.version, c.now(), true
	}
	c.streamsMu.Unlock()
}

func statusErr(code int32, msg string) error {
	return fmt.Errorf("%s (gRPC code %d)", msg, code)
}

// OnStreamOpen counts a SotW stream.
func (c *callbacks) OnStreamOpen(_ context.Context, id int64, _ string) error {
	c.open(id, false)
	return nil
}

// OnStreamClosed releases a SotW stream.
func (c *callbacks) OnStreamClosed(id int64, _ *corev3.Node) { c.closed(id, false) }

// OnStreamRequest sees ACKs and NACKs of SotW responses.
func (c *callbacks) OnStreamRequest(id int64, req *discovery.DiscoveryRequest) error {
	var detail error
	if d := req.GetErrorDetail(); d != nil {
		detail = statusErr(d.GetCode(), d.GetMessage())
	}
	rejected, delay, err := c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), detail)
	if err != nil {
		return err
	}
	c.ackedScopes(id, req.GetTypeUrl(), req.GetResponseNonce(), detail != nil)
	if detail != nil && rejected.nonce != "" {
		req.VersionInfo = rejected.version
		c.holds.Store(req, hold{stream: id, delay: delay})
	}
	return nil
}

// OnStreamResponse remembers what a SotW stream was sent, and counts it.
func (c *callbacks) OnStreamResponse(_ context.Context, id int64, _ *discovery.DiscoveryRequest, resp *discovery.DiscoveryResponse) {
	c.metrics.pushes.WithLabelValues(resp.GetTypeUrl(), "sotw").Inc()
	c.record(id, resp.GetTypeUrl(), sent{nonce: resp.GetNonce(), version: resp.GetVersionInfo(), sotw: resp})
	if resp.GetTypeUrl() == resource.ScopedRouteType {
		c.sentScopes(id, resp.GetNonce(), sotwScopes(resp))
	}
}

// deltaKey is a delta stream's key in Server.streams: go-control-plane
// numbers SotW and delta streams separately (both from 1), so delta
// streams are kept under the negated id.
func deltaKey(id int64) int64 { return -id }

// OnDeltaStreamOpen counts a delta stream.
func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.open(deltaKey(id), true)
	return nil
}

// OnDeltaStreamClosed releases a delta stream.
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) { c.closed(deltaKey(id), true) }

// OnStreamDeltaRequest sees ACKs and NACKs of delta responses.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	var detail error
	if d := req.GetErrorDetail(); d != nil {
		detail = statusErr(d.GetCode(), d.GetMessage())
	}
	id = deltaKey(id)
	rejected, delay, err := c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), detail)
	if err != nil {
		return err
	}
	c.ackedScopes(id, req.GetTypeUrl(), req.GetResponseNonce(), detail != nil)
	if detail != nil && rejected.nonce != "" {
		names := rejected.names()
		names = append(names, rejected.delta.GetRemovedResources()...)
		c.holds.Store(req, hold{stream: id, delay: delay, names: names})
	}
	return nil
}

// OnStreamDeltaResponse remembers what a delta stream was sent, and counts it.
func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
	id = deltaKey(id)
	c.metrics.pushes.WithLabelValues(resp.GetTypeUrl(), "delta").Inc()
	c.record(id, resp.GetTypeUrl(), sent{nonce: resp.GetNonce(), version: resp.GetSystemVersionInfo(), delta: resp})
	if resp.GetTypeUrl() == resource.ScopedRouteType {
		c.sentScopes(id, resp.GetNonce(), deltaScopes(resp))
	}
}

// OnFetchRequest accepts REST fetches (not used by airlock's bootstraps).
func (c *callbacks) OnFetchRequest(context.Context, *discovery.DiscoveryRequest) error { return nil }

// OnFetchResponse ignores REST fetches.
func (c *callbacks) OnFetchResponse(*discovery.DiscoveryRequest, *discovery.DiscoveryResponse) {}
