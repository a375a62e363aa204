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
// A Driver serves each request against the configuration current when the
// request started; Update swaps routes, clusters and filters atomically for
// later requests. ConnectADS (or ConnectBootstrap, from an ADS bootstrap)
// runs an ADS client that takes listeners, clusters, scoped routes and
// route configurations over SotW or incremental xDS as Envoy does, ACKs and
// NACKs them, and drives a Driver with each complete configuration.
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
//     filter, so ext_proc sees response_headers for it even when it never saw
//     the request; after upstream headers it is sent directly; after downstream
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
