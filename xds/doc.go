// Package xds is airlock's control plane for Envoy: an ADS server
// (go-control-plane, state-of-the-world and incremental) that gives each
// connected Envoy its listener, clusters and routes, and a route per live
// just-in-time grant. When a grant is issued its route appears in every
// connected Envoy; when it is revoked or expires the route is withdrawn,
// and Envoy itself answers 403 to any request naming that grant.
//
// xds only serves: package envoy renders every resource from an
// envoy.Model (the data path) and an envoy.Grant (a grant's scope); xds
// keeps the live grants, the snapshots and what each Envoy acknowledged.
// The resource layout — routes scoped by the x-airlock-grant header, one
// ScopedRouteConfiguration per grant, incremental ADS — is explained in
// docs/xds.md.
//
// The server refuses an Envoy older than MinEnvoyVersion (version.go),
// resends what an Envoy rejected after a backoff or a configuration
// change (retry.go), reports every stream's state (Status, served at
// StatusPath and shown by `airlock envoy status`), and is loaded with the
// live grants before it serves (StartFollow), so a reconnecting Envoy
// keeps every grant's route.
package xds
