// Package envoydriver is the local stand-in for Envoy: an HTTP/1.1 listener
// that runs Envoy's HTTP connection manager semantics for the features airlock
// uses — route matching (route.proto), the ext_authz and ext_proc HTTP filters
// talking real gRPC to airlock's services, and the router filter proxying to
// static clusters with chunk-by-chunk streaming.
//
// It is test infrastructure: airlock's end-to-end tests and `make demo` use it
// because no Envoy binary can be had on the build machines. Its input is
// Envoy's own configuration protos (a Listener with an HttpConnectionManager,
// RouteConfigurations and Clusters), so the same resources airlock hands to a
// real Envoy drive this driver. Every behaviour cites, next to the code, the
// Envoy proto field or source file it follows; features outside that set are
// rejected by New with an error naming the field rather than silently ignored.
//
// A Driver serves each request against the listener, filters, clusters and
// route configuration current when the request started (RouteConfigurations
// are snapped per request: conn_manager_impl.cc snapRouteConfig); Update
// swaps them atomically for later requests. SRDS scopes are the exception:
// Envoy updates each worker's ScopedConfigImpl in place
// (source/common/router/scoped_rds.cc addOrUpdateScopes →
// applyConfigUpdate; scoped_config_impl.cc), so a request that re-selects
// its scope after clear_route_cache reads the live scope table of its
// subscription (same scoped_routes name and key builder) — a scope pushed
// while a call is held in ext_authz routes that call. Inline scope lists
// belong to their connection manager and are snapped like routes.
//
// ConnectADS (or ConnectBootstrap, from an ADS bootstrap) runs an ADS
// client that takes listeners, clusters, scoped routes and route
// configurations over SotW or incremental xDS as Envoy does, ACKs and
// NACKs them, and drives a Driver with each complete configuration. Like
// Envoy it ACKs on its "main thread" and its "workers" apply the update
// ADSOptions.ApplyLag (default 5 ms) later
// (ThreadLocal::Slot::runOnAllThreads,
// source/common/thread_local/thread_local_impl.cc), so a call released the
// instant the control plane sees the ACK can miss a scope. Its node
// carries user_agent_name "envoy" and user_agent_build_version
// (ADSOptions.EnvoyVersion, default 1.37.0) unless the bootstrap node sets
// them (source/server/server.cc). ADS.Stats counts ACKs, NACKs and
// resources updated and removed per type.
//
// Options.EnvoyVersion (and ADSOptions.EnvoyVersion) names the release the
// stand-in plays; behaviour that differs between the supported releases
// (1.34 and later) follows it:
//
//   - Local replies reach ext_proc (response_headers) on 1.37 and later
//     only; 1.34–1.36 skip them (envoyproxy/envoy#41769, ext_proc.cc).
//
// Behaviours worth knowing when writing tests against it:
//
//   - It binds 127.0.0.1 at the listener's port, plaintext HTTP/1.1 only, one
//     filter chain. Trailers pass only with http_protocol_options.enable_trailers
//     (Envoy's HTTP/1 codec drops them otherwise) and not to upstream requests.
//   - The filter chain is instantiated with the route matched from the original
//     request headers (FilterChainOptions::filterDisabled), so a filter that is
//     disabled in the HCM and only enabled on a route reached after a
//     clear_route_cache re-match does not run — as in Envoy.
//   - A local reply sent before upstream response headers (ext_authz denial,
//     ext_proc immediate response, 404, 503, 504) passes through every encoder
//     filter, so ext_proc (1.37 and later, above) sees response_headers for it
//     even when it never saw the request; after upstream headers it is sent directly; after downstream
//     headers were written the connection is reset.
//   - CheckResponse header options: append=true appends (request) or adds
//     another entry (response); otherwise append_action's named values apply,
//     and its zero value (APPEND_IF_EXISTS_OR_ADD, indistinguishable from
//     unset) overwrites, as the proto says "append defaults to false" here.
//   - ext_proc reads header mutation values from raw_value only (Envoy's
//     send_header_raw_value default); a value in HeaderValue.value sets the
//     header to "".
//   - ext_proc body modes follow ext_proc.cc: protocol_config (in the first
//     message only) carries the body modes after per-route overrides;
//     mode_override is honoured only on a header response, with
//     allow_mode_override, without send_body_without_waiting_for_header_response,
//     outside FULL_DUPLEX_STREAMED and within allowed_override_modes;
//     BUFFERED_PARTIAL sends what is held once it exceeds the buffer limit
//     (end_of_stream false) and passes the rest of the body unprocessed.
//   - ext_authz buffering the request body without allow_partial_message
//     sets the stream's one buffer limit to max_request_bytes
//     (ext_authz.cc setDecoderBufferLimit; filter_manager.cc
//     setBufferLimit), and that limit bounds response buffering too: an
//     ext_proc BUFFERED response body over it gets Envoy's 500 "Internal
//     Server Error" before response headers are sent (a reset after).
//   - Circuit breakers (cluster.proto circuit_breakers, first DEFAULT
//     priority thresholds; Envoy's defaults 1024 and max_retries 3,
//     upstream_impl.cc ResourceManagers::load): the router's HTTP/1
//     upstream holds a slot per request — over max_requests, or with
//     max_connections in use and max_pending_requests already waiting, the
//     request fails with the router's 503 "reset reason: overflow",
//     x-envoy-overloaded: true (unless suppress_envoy_headers) and flag UO
//     (router.cc onUpstreamReset; conn_pool_base.cc); otherwise it waits as
//     pending. An ext_authz Check holds a slot of its cluster while it runs
//     (a held call holds one) and an ext_proc stream for its life; an
//     overflow is a failed call (status_on_error or failure_mode_allow) or
//     a failed stream (500 unless failure_mode_allow). Driver.ClusterStats
//     reads the counters (upstream_rq_pending_overflow and the rest).
//     Retries are not modelled (max_retries is read, unused).
//   - Path handling follows conn_manager_utility.cc maybeNormalizePath: a
//     fragment is rejected (400); path_with_escaped_slashes_action acts on
//     %2F/%5C in the path (path_utility.cc unescapeSlashes); normalize_path
//     runs the Chromium canonicalizer Envoy uses (url_canon_path.cc as
//     pinned by Envoy's path_utility_test): dot segments resolved, "\" is
//     "/", unreserved escapes decoded, other escapes kept exactly as
//     written (not upper-cased), an escaped NUL rejected (400), characters
//     such as '"', '<', '{' and non-ASCII percent-encoded; merge_slashes
//     joins non-empty segments (path_utility.cc mergeSlashes). A gRPC
//     request that would be redirected is rejected instead. Both answers
//     carry details path_normalization_failed. Not modelled: the newer
//     strip_dotdot_segments_with_parameters runtime guard ("..;x").
//   - Regular request headers reach filters sorted by name (net/http does not
//     keep arrival order across names); duplicates keep their order.
//   - Scoped routes (SRDS) select a route configuration by header-derived key
//     and are selected again after clear_route_cache; a key without a scope
//     is "no route" (404, flag NR). The HCM's early header mutations
//     (header_mutation extension) run before routing, and local_reply_config
//     mappers (header, response flag, status code filters) rewrite local
//     replies.
//   - A cluster's transport_socket may be envoy.transport_sockets.tls with
//     the UpstreamTlsContext subset airlock renders (envoy/tls.go): a client
//     certificate and key, validation_context.trusted_ca (required) with
//     match_typed_subject_alt_names (Envoy's DNS wildcard semantics for
//     exact DNS matchers), sni, alpn_protocols, TLS versions; Envoy's client
//     defaults otherwise (TLS 1.2 maximum, its cipher list and curves). It
//     serves envoy_grpc services (ext_authz, ext_proc) and the bootstrap's
//     ADS cluster; the router refuses a TLS cluster with 503. Any other TLS
//     setting is an error naming the field.
package envoydriver
