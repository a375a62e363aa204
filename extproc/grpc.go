package extproc

import (
	"errors"
	"io"

	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
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

// Process serves one stream until Envoy closes it.
func (s *Server) Process(stream extprocv3.ExternalProcessor_ProcessServer) error {
	defer s.P.enter()()
	st := s.P.NewStream()
	defer st.Close()
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		resps, err := st.Handle(req)
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
