// Package xds is airlock's control plane for Envoy: an ADS server
// (go-control-plane, state-of-the-world and incremental) that gives each
// connected Envoy its listener, clusters and routes, and a route per live
// just-in-time grant. When a grant is issued its route appears in every
// connected Envoy; when it is revoked or expires the route is withdrawn,
// and Envoy itself answers 403 to any request naming that grant.
//
// The model (Grant, and the targets of internal/config) is free of Envoy
// types; translate.go is the one place grants become Envoy resources, next
// to package envoy, which renders the listener, clusters and base routes.
// The resource layout — routes scoped by the x-airlock-grant header, one
// ScopedRouteConfiguration per grant, incremental ADS — is explained in
// docs/xds.md.
package xds
