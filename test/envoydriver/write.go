package envoydriver

import (
	"net/http"
	"net/textproto"
	"strings"
)

// write sends a response downstream: headers first, then each body frame
// as it arrives, flushed at once so streamed bodies (SSE) reach the client
// event by event. Without a content-length the HTTP/1.1 server uses chunked
// transfer-encoding, as Envoy's HTTP/1 codec does.
func (s *stream) write(r *response) {
	if s.written.Load() {
		s.reset(errReset)
	}
	s.cfg.hcm.responseServerHeaders(r.headers, s.requestID)
	hdr := s.w.Header()
	for _, e := range r.headers.entries {
		if strings.HasPrefix(e.key, ":") || hopByHop[e.key] {
			continue
		}
		k := textproto.CanonicalMIMEHeaderKey(e.key)
		hdr[k] = append(hdr[k], e.value)
	}
	if _, ok := hdr["Content-Type"]; !ok {
		// Keep net/http from sniffing a content-type Envoy would not add.
		hdr["Content-Type"] = nil
	}
	s.written.Store(true)
	s.w.WriteHeader(r.status())
	if r.body == nil {
		return
	}
	rc := http.NewResponseController(s.w)
	_ = rc.Flush()
	for {
		f, err := r.body.next(s.abortCtx)
		if err != nil {
			s.reset(err)
		}
		if len(f.data) > 0 {
			if _, err := s.w.Write(f.data); err != nil {
				s.reset(err)
			}
			if err := rc.Flush(); err != nil {
				s.reset(err)
			}
		}
		if f.trailers != nil && s.cfg.hcm.enableTrailers {
			for _, e := range f.trailers.entries {
				k := http.TrailerPrefix + textproto.CanonicalMIMEHeaderKey(e.key)
				hdr[k] = append(hdr[k], e.value)
			}
		}
		if f.last() {
			return
		}
	}
}
