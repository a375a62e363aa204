package extproc

import (
	"errors"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Server adapts the Processor to envoy.service.ext_proc.v3.ExternalProcessor:
// one gRPC stream per HTTP request.
type Server struct {
	extprocv3.UnimplementedExternalProcessorServer
	P *Processor
}

var _ extprocv3.ExternalProcessorServer = (*Server)(nil)

// Process serves one stream until Envoy closes it, in one span (when
// tracing is on) continuing the trace Envoy sent in the stream's metadata.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) (err error) {
	defer s.P.enter()()
	st := s.P.NewStream()
	defer st.Close()
	if tr := s.P.opts.Tracing; tr.On() {
		_, span := tr.Start(tr.Incoming(stream.Context(), nil), "airlock.proc.Stream", trace.SpanKindServer)
		defer func() { endStreamSpan(span, st, err) }()
	}
	var md metadataCache
	for {
		// wireRequest reads its own encoding (grpcwire's codec).
		req := wireRequest{ProcessingRequest: new(extprocv3.ProcessingRequest), md: &md}
		err := stream.RecvMsg(&req)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resps, err := st.Handle(req.ProcessingRequest)
		if err != nil {
			// A protocol error ends the stream with an error: Envoy then
			// fails the request (500) unless failure_mode_allow, which
			// airlock's config keeps off.
			return status.Error(codes.InvalidArgument, err.Error())
		}
		for _, r := range resps {
			if err := stream.Send(r); err != nil {
				return err
			}
		}
	}
}

// endStreamSpan names what the stream was about (the ext_authz decision it
// carried, never a payload) and ends its span.
func endStreamSpan(span trace.Span, st *Stream, err error) {
	d := &st.meta.d
	span.SetAttributes(attribute.String("airlock.decision_id", d.DecisionID), attribute.String("airlock.target", d.Target),
		attribute.Int("http.response.status_code", st.status), attribute.Bool("airlock.proc.failed", st.failed))
	if err != nil || st.failed {
		span.SetStatus(otelcodes.Error, "exchange failed")
	}
	span.End()
}
