package envoy

import (
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// Names of the ext_proc parts.
const (
	ExtProcFilter = "envoy.filters.http.ext_proc"
	ClusterProc   = "airlock_proc"
	// ProcMessageTimeout bounds airlock's answer to each message (Envoy's
	// default is 200 ms); masking an 8 MiB JSON body takes a few tens of
	// milliseconds, so this leaves room under load while a stalled
	// processor still fails the response instead of hanging it.
	ProcMessageTimeout = 5 * time.Second
)

// hasExtProc: the chain has ext_proc when airlock serves it (listen.proc).
func hasExtProc(m *Model) bool { return m.Services.Proc != "" }

// extProcConfig is the ext_proc filter airlock needs.
//
// Processing mode: request headers and the buffered request body (to
// record the call), response headers, and the response body STREAMED.
// On the response headers airlock picks how to read the body: a JSON body
// is switched to BUFFERED with mode_override (allow_mode_override) and
// masked whole, an SSE stream stays STREAMED and is masked event by event
// as chunks arrive. STREAMED rather than FULL_DUPLEX_STREAMED because
// mode_override is not available in full duplex, full duplex requires
// trailers to be sent, and it has no per-message timer — a stalled
// processor would hold the response forever instead of failing it. The
// service supports full duplex too (extproc tests both).
//
// failure_mode_allow stays off: if masking fails, the response fails.
func extProcConfig(*Model, bool) proto.Message {
	return &extprocv3.ExternalProcessor{
		GrpcService: &corev3.GrpcService{
			TargetSpecifier: &corev3.GrpcService_EnvoyGrpc_{EnvoyGrpc: &corev3.GrpcService_EnvoyGrpc{ClusterName: ClusterProc}},
		},
		FailureModeAllow: false,
		ProcessingMode: &extprocv3.ProcessingMode{
			RequestHeaderMode:   extprocv3.ProcessingMode_SEND,
			ResponseHeaderMode:  extprocv3.ProcessingMode_SEND,
			RequestBodyMode:     extprocv3.ProcessingMode_BUFFERED,
			ResponseBodyMode:    extprocv3.ProcessingMode_STREAMED,
			RequestTrailerMode:  extprocv3.ProcessingMode_SKIP,
			ResponseTrailerMode: extprocv3.ProcessingMode_SKIP,
		},
		AllowModeOverride: true,
		MessageTimeout:    durationpb.New(ProcMessageTimeout),
		// What ext_authz decided (principal, decision id, masking profile,
		// grant …) travels to ext_proc as dynamic metadata.
		MetadataOptions: &extprocv3.MetadataOptions{
			ForwardingNamespaces: &extprocv3.MetadataOptions_MetadataNamespaces{Untyped: []string{wire.AuthzNamespace}},
		},
	}
}

func extProcOff() proto.Message {
	return &extprocv3.ExtProcPerRoute{Override: &extprocv3.ExtProcPerRoute_Disabled{Disabled: true}}
}
