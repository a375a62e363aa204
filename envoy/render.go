// Package envoy is the one translator from airlock's Envoy-free Model to
// Envoy's types: the HTTP listener with its filters (one ordered table,
// filters.go), a route for exactly each MCP target's endpoint (anything
// else is a 404 no filter sees), a cluster per target and per airlock
// service, and, for the data path served over ADS, the base scope and one
// scope per live grant. The same rendering feeds the static bootstrap
// (`airlock envoy bootstrap --static`), the end-to-end harness and the
// xDS server, which only serves what this package renders.
//
// Every resource is checked with ValidateAll, including the typed_config
// inside each Any, and no target's responses may bypass ext_proc
// (checkResponseBodyModes).
package envoy

import (
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/airlock-mcp/airlock/internal/config"
)

// Resources is the whole data path with its routes inline: what the
// static bootstrap carries.
type Resources struct {
	Listener *listenerv3.Listener
	Routes   *routev3.RouteConfiguration
	Clusters []*clusterv3.Cluster
}

// Dynamic is the data path as served over ADS: a listener whose routes
// are scoped by wire.HeaderGrant, the base scope, and the clusters. Grant
// scopes are rendered one by one (GrantScope).
type Dynamic struct {
	Listener  *listenerv3.Listener
	BaseScope *routev3.ScopedRouteConfiguration
	Clusters  []*clusterv3.Cluster
}

// Build renders the static resources for cfg. Same input, same output.
func Build(cfg *config.Config, b Bound) (*Resources, error) {
	m, err := NewModel(cfg, b)
	if err != nil {
		return nil, err
	}
	return m.Static()
}

// BuildDynamic renders the ADS data path for cfg. Same input, same output.
func BuildDynamic(cfg *config.Config, b Bound) (*Dynamic, error) {
	m, err := NewModel(cfg, b)
	if err != nil {
		return nil, err
	}
	return m.Dynamic()
}

// Static renders the data path with its routes inline, validated.
func (m *Model) Static() (*Resources, error) {
	hcm := m.connectionManager(false)
	hcm.RouteSpecifier = &hcmv3.HttpConnectionManager_RouteConfig{RouteConfig: m.routes()}
	lis, err := m.listener(hcm)
	if err != nil {
		return nil, err
	}
	cs, err := m.clusters()
	if err != nil {
		return nil, err
	}
	r := &Resources{Listener: lis, Routes: m.routes(), Clusters: cs}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// Dynamic renders the data path served over ADS, validated.
func (m *Model) Dynamic() (*Dynamic, error) {
	hcm := m.connectionManager(true)
	m.scopeRouting(hcm)
	lis, err := m.listener(hcm)
	if err != nil {
		return nil, err
	}
	cs, err := m.clusters()
	if err != nil {
		return nil, err
	}
	d := &Dynamic{Listener: lis, BaseScope: m.baseScope(), Clusters: cs}
	if err := d.Validate(); err != nil {
		return nil, err
	}
	return d, nil
}

// mustAny packs m deterministically (map entries sorted), so the same
// input gives the same bytes.
func mustAny(m proto.Message) *anypb.Any {
	a := &anypb.Any{}
	err := anypb.MarshalFrom(a, m, proto.MarshalOptions{Deterministic: true})
	if err != nil {
		panic(err) // only for messages built here, which always marshal
	}
	return a
}
