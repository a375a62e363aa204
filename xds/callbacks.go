package xds

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
	"github.com/envoyproxy/go-control-plane/pkg/server/v3"
)

// callbacks are the Server seen by go-control-plane: they give a node its
// snapshot when its first stream asks, and tell ACKs from NACKs.
//
// A NACK (a request whose error_detail is set, answering our last
// response's nonce) is logged with the resources of that response and
// Envoy's error, and counted. On a SotW stream the request's version is
// then set to the rejected version: Envoy keeps its previous config, and
// the caches wait for the next change instead of resending what was just
// rejected (which Envoy would reject again, in a loop).
type callbacks Server

var _ server.Callbacks = (*callbacks)(nil)

// streamState is what one xDS stream was last sent, per type.
type streamState struct {
	node  string
	delta bool
	sent  map[string]sent
	acks  *ackState // scoped routes this stream has applied
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
	c.streams[id] = &streamState{delta: delta, sent: map[string]sent{}}
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
	if st == nil {
		return
	}
	if st.node != "" {
		(*Server)(c).nodeLeft(st.node)
	}
}

// request handles what every request on a stream shares: the node joins
// on its first request, and a NACK is reported. It returns the stream's
// record of the response a NACK rejected (zero when not a NACK).
func (c *callbacks) request(id int64, node *corev3.Node, typeURL, nonce string, detail error) (sent, error) {
	c.streamsMu.Lock()
	st := c.streams[id]
	if st == nil {
		c.streamsMu.Unlock()
		return sent{}, nil
	}
	join := ""
	if st.node == "" {
		if node.GetId() == "" {
			c.streamsMu.Unlock()
			return sent{}, errors.New("xDS request without node.id: every Envoy must name itself")
		}
		st.node = node.GetId()
		join = st.node
	}
	last, ok := st.sent[typeURL]
	nodeID := st.node
	c.streamsMu.Unlock()

	if join != "" {
		(*Server)(c).nodeJoined(join)
	}
	if detail == nil {
		return sent{}, nil
	}
	c.metrics.nacks.WithLabelValues(typeURL).Inc()
	var names []string
	var version string
	if ok && last.nonce == nonce {
		names = last.names()
		version = last.version
	}
	c.log.Warn("xDS NACK: Envoy rejected a response and kept its previous configuration",
		"node", nodeID, "type_url", typeURL, "nonce", nonce, "version", version,
		slog.Group("resources", "count", len(names), "names", summarize(names)), "envoy_error", detail.Error())
	if !ok || last.nonce != nonce {
		return sent{}, nil
	}
	return last, nil
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
	rejected, err := c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), detail)
	if err != nil {
		return err
	}
	c.ackedScopes(id, req.GetTypeUrl(), req.GetResponseNonce(), detail != nil)
	if detail != nil && rejected.nonce != "" {
		req.VersionInfo = rejected.version
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

// OnDeltaStreamOpen counts a delta stream.
func (c *callbacks) OnDeltaStreamOpen(_ context.Context, id int64, _ string) error {
	c.open(id, true)
	return nil
}

// OnDeltaStreamClosed releases a delta stream.
func (c *callbacks) OnDeltaStreamClosed(id int64, _ *corev3.Node) { c.closed(id, true) }

// OnStreamDeltaRequest sees ACKs and NACKs of delta responses.
func (c *callbacks) OnStreamDeltaRequest(id int64, req *discovery.DeltaDiscoveryRequest) error {
	var detail error
	if d := req.GetErrorDetail(); d != nil {
		detail = statusErr(d.GetCode(), d.GetMessage())
	}
	_, err := c.request(id, req.GetNode(), req.GetTypeUrl(), req.GetResponseNonce(), detail)
	if err == nil {
		c.ackedScopes(id, req.GetTypeUrl(), req.GetResponseNonce(), detail != nil)
	}
	return err
}

// OnStreamDeltaResponse remembers what a delta stream was sent, and counts it.
func (c *callbacks) OnStreamDeltaResponse(id int64, _ *discovery.DeltaDiscoveryRequest, resp *discovery.DeltaDiscoveryResponse) {
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
