package xds

import (
	"encoding/json"
	"net/http"
	"sort"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/airlock-mcp/airlock/envoy"
)

// Status is what the ADS server knows of every connected Envoy, as
// `airlock envoy status` shows it (docs/xds.md).
type Status struct {
	MinEnvoyVersion string         `json:"min_envoy_version"`
	GrantRoutes     int            `json:"grant_routes"` // live grants with a route
	Streams         []StreamStatus `json:"streams"`
	// Refused are nodes whose streams were refused (the latest refusal of
	// each node id, at most a few hundred).
	Refused []RefusedNode `json:"refused,omitempty"`
}

// StreamStatus is one open xDS stream.
type StreamStatus struct {
	Node    string `json:"node"` // "" until its first request
	Cluster string `json:"cluster,omitempty"`
	// EnvoyVersion is the node's user_agent_build_version, or "unknown"
	// (a client that sent none).
	EnvoyVersion string       `json:"envoy_version"`
	Mode         string       `json:"mode"` // delta or sotw
	ConnectedAt  time.Time    `json:"connected_at"`
	Types        []TypeStatus `json:"types"`
}

// Per-type states.
const (
	StateSynced = "SYNCED" // the current configuration is acknowledged
	StateStale  = "STALE"  // a response is unanswered, or the client lags
	StateNACKed = "NACKED" // the last response was rejected
)

// TypeStatus is one stream's exchange of one resource type.
type TypeStatus struct {
	TypeURL      string     `json:"type_url"`
	Type         string     `json:"type"` // listeners, clusters, scoped_routes
	State        string     `json:"state"`
	SentVersion  string     `json:"sent_version,omitempty"`
	AckedVersion string     `json:"acked_version,omitempty"`
	LastPush     *time.Time `json:"last_push,omitempty"`
	ACKs         int        `json:"acks"`
	NACKs        int        `json:"nacks"`
	LastNACK     string     `json:"last_nack,omitempty"` // Envoy's error
	LastNACKAt   *time.Time `json:"last_nack_at,omitempty"`
	// NextRetry is when a rejected response is sent again (retry.go).
	NextRetry *time.Time `json:"next_retry,omitempty"`
	// Pending: the last response is not acknowledged or rejected yet.
	Pending bool `json:"pending"`
	// Behind counts, for scoped routes, the live grants whose scope the
	// client has not acknowledged; for the listener and clusters over
	// SotW, 1 when its acknowledged version is not the current one.
	Behind int `json:"behind"`
}

// RefusedNode is a node airlock would not serve, and why.
type RefusedNode struct {
	Node         string    `json:"node"`
	Cluster      string    `json:"cluster,omitempty"`
	EnvoyVersion string    `json:"envoy_version,omitempty"`
	Reason       string    `json:"reason"`
	At           time.Time `json:"at"`
	Count        int       `json:"count"`
}

// typeName is a type URL's short name.
func typeName(typeURL string) string {
	switch typeURL {
	case resource.ListenerType:
		return "listeners"
	case resource.ClusterType:
		return "clusters"
	case resource.ScopedRouteType:
		return "scoped_routes"
	case resource.RouteType:
		return "routes"
	}
	return typeURL
}

// Status reports every connected stream, sorted by node, and the nodes
// refused lately.
func (s *Server) Status() Status {
	s.mu.Lock()
	live := make([]string, 0, len(s.grants))
	for id := range s.grants {
		live = append(live, envoy.ScopeName(id))
	}
	s.mu.Unlock()
	current := map[string]string{}
	if snap := s.base.Load(); snap != nil {
		for _, t := range []string{resource.ListenerType, resource.ClusterType} {
			current[t] = snap.GetVersion(t)
		}
	}

	out := Status{MinEnvoyVersion: MinEnvoyVersion, GrantRoutes: len(live), Streams: []StreamStatus{}}
	s.streamsMu.Lock()
	defer s.streamsMu.Unlock()
	for _, st := range s.streams {
		ss := StreamStatus{Node: st.node, Cluster: st.cluster, EnvoyVersion: st.version, Mode: mode(st.delta), ConnectedAt: st.connected.UTC(), Types: []TypeStatus{}}
		if ss.EnvoyVersion == "" {
			ss.EnvoyVersion = VersionUnknown
		}
		urls := make([]string, 0, len(st.types))
		for u := range st.types {
			urls = append(urls, u)
		}
		if st.acks != nil && st.acks.seen && st.types[resource.ScopedRouteType] == nil {
			urls = append(urls, resource.ScopedRouteType) // subscribed, nothing sent yet
		}
		sort.Strings(urls)
		for _, u := range urls {
			ts := st.types[u]
			if ts == nil {
				ts = &typeStats{}
			}
			t := TypeStatus{TypeURL: u, Type: typeName(u), SentVersion: ts.sentVersion, AckedVersion: ts.ackedVersion,
				ACKs: ts.acks, NACKs: ts.nacks, LastNACK: ts.lastNACK, Pending: ts.pending,
				LastPush: when(ts.sentAt), LastNACKAt: when(ts.lastNACKAt)}
			if ts.streak > 0 {
				t.NextRetry = when(ts.retryAt)
			}
			switch {
			case u == resource.ScopedRouteType && st.acks != nil:
				for _, n := range live {
					if _, ok := st.acks.has[n]; !ok {
						t.Behind++
					}
				}
			case !st.delta && current[u] != "" && ts.ackedVersion != current[u]:
				// SotW carries the snapshot's version on every type; a
				// delta client is sent only resources that changed (so an
				// unchanged listener keeps its older version) and is
				// behind exactly while a response is unanswered.
				t.Behind = 1
			}
			switch {
			case ts.streak > 0:
				t.State = StateNACKed
			case ts.pending || t.Behind > 0:
				t.State = StateStale
			default:
				t.State = StateSynced
			}
			ss.Types = append(ss.Types, t)
		}
		out.Streams = append(out.Streams, ss)
	}
	for _, r := range s.refused {
		out.Refused = append(out.Refused, r)
	}
	sort.Slice(out.Streams, func(i, j int) bool {
		a, b := out.Streams[i], out.Streams[j]
		if a.Node != b.Node {
			return a.Node < b.Node
		}
		return a.ConnectedAt.Before(b.ConnectedAt)
	})
	sort.Slice(out.Refused, func(i, j int) bool { return out.Refused[i].Node < out.Refused[j].Node })
	return out
}

func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// StatusPath is where airlock's HTTP server serves Status as JSON. It
// sits beside /metrics, outside /airlock/ (which Envoy routes to the
// public approvals API): node ids, versions and Envoy's errors are for
// operators on airlock's own HTTP listener.
const StatusPath = "/xds/status"

// StatusHandler serves Status as JSON.
func (s *Server) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
}
