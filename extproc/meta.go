package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/airlock-mcp/airlock/internal/wire"
)

// streamMeta is what ext_authz decided about this request, forwarded by
// Envoy as dynamic metadata (namespace wire.AuthzNamespace): the fields
// merged over the stream's messages, and the wire.Decision they read as.
type streamMeta struct {
	fields map[string]*structpb.Value
	// owned: fields is this stream's own map; until a second message
	// brings metadata, it is the first message's, read only.
	owned bool
	d     wire.Decision
	// last is the metadata merged last: the same again (the stream's
	// metadata cache hands a message with the same bytes the same
	// *corev3.Metadata) changes nothing and is not merged again.
	last *corev3.Metadata
}

// newStreamMeta is the metadata of a stream before Envoy forwarded any:
// nothing known, recorded by default.
func newStreamMeta() streamMeta { return streamMeta{d: wire.ReadDecision(nil)} }

func (m *streamMeta) merge(md *corev3.Metadata) {
	if md == nil || md == m.last {
		return
	}
	m.last = md
	st := md.GetFilterMetadata()[wire.AuthzNamespace]
	if st == nil {
		return
	}
	switch {
	case m.fields == nil:
		// The usual case, metadata on the first message only: read as
		// it came, no copy.
		m.fields = st.GetFields()
	case !m.owned:
		own := make(map[string]*structpb.Value, len(m.fields)+len(st.GetFields()))
		for k, v := range m.fields {
			own[k] = v
		}
		m.fields, m.owned = own, true
		fallthrough
	default:
		for k, v := range st.GetFields() {
			m.fields[k] = v
		}
	}
	m.d = wire.ReadDecision(m.fields)
}
