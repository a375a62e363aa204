// Package wire is the contract between airlock's services and Envoy, in one
// place: the header names ext_authz sets and Envoy routes on, the metadata
// namespaces and keys, the ext_authz context-extension keys Envoy config
// carries, and the typed Decision that ext_authz writes into Envoy's dynamic
// metadata and ext_proc reads back.
//
// Everything that crosses Envoy between two airlock parts is spelled here
// once. A key renamed here is renamed for its writer and its reader; a field
// added to Decision without a key fails the round-trip test.
//
// wire imports no other airlock package and nothing heavier than the
// protobuf runtime.
package wire

// Headers airlock sets on requests it allows. A client can never set them:
// ext_authz removes every incoming x-airlock-* header it does not set itself.
const (
	HeaderPrefix     = "x-airlock-"
	HeaderPrincipal  = "x-airlock-principal"
	HeaderClientID   = "x-airlock-client-id"
	HeaderTarget     = "x-airlock-target"
	HeaderDecisionID = "x-airlock-decision-id"
	// HeaderGrant carries the grant id ext_authz chose. Over ADS it is
	// also the scoped-routes key: every request starts with NoGrant
	// (forced before routing) and ext_authz moves a granted call into its
	// grant's scope by setting it.
	HeaderGrant = "x-airlock-grant"
	// HeaderReason is the request header an agent may state its reason
	// in when it cannot set params._meta (see ReasonMetaKey).
	HeaderReason = "x-airlock-reason"
)

// NoGrant is the value HeaderGrant has on every request before ext_authz
// runs, and after it for calls no grant allowed: the base scope's key.
const NoGrant = "-"

// ReasonMetaKey is the member of a request's params._meta that carries the
// agent's reason for a call:
// {"name":"delete_repository","arguments":{…},"_meta":{"io.airlock/reason":"cleanup, ticket OPS-12"}}
const ReasonMetaKey = "io.airlock/reason"

// Metadata namespaces.
const (
	// AuthzNamespace is the dynamic metadata namespace Envoy stores
	// ext_authz's metadata under (the filter's name) and forwards to
	// ext_proc (metadata_options.forwarding_namespaces).
	AuthzNamespace = "envoy.filters.http.ext_authz"
	// RouteNamespace is the route filter_metadata namespace airlock
	// renders (target and grant of a route).
	RouteNamespace = "airlock"
)

// Keys of route metadata (RouteNamespace). Operators read them in Envoy's
// config dump and access logs (%METADATA(ROUTE:airlock:grant_id)%; see
// docs/xds.md).
const (
	RouteTarget = "target"
	// RouteGrantID, RouteTool and RouteExpiry are on grant routes only.
	RouteGrantID = "grant_id"
	RouteTool    = "tool"
	RouteExpiry  = "expiry"
)

// ext_authz context-extension keys, set per route in Envoy config.
const (
	// ContextTarget names the target a route belongs to; ext_authz
	// answers for that target only.
	ContextTarget = "airlock_target"
	// ContextGrant names the grant a per-grant route exists for.
	ContextGrant = "airlock_grant"
)
