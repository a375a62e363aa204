package extproc

import (
	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	"google.golang.org/protobuf/types/known/structpb"
)

// streamMeta is what ext_authz decided about this request, forwarded by
// Envoy as dynamic metadata (namespace envoy.filters.http.ext_authz).
type streamMeta struct {
	fields map[string]*structpb.Value
}

func (m *streamMeta) merge(md *corev3.Metadata) {
	st := md.GetFilterMetadata()[AuthzNamespace]
	if st == nil {
		return
	}
	if m.fields == nil {
		m.fields = map[string]*structpb.Value{}
	}
	for k, v := range st.GetFields() {
		m.fields[k] = v
	}
}

func (m *streamMeta) str(k string) string {
	return m.fields[k].GetStringValue()
}

// record says whether policy wants this call recorded (default yes).
func (m *streamMeta) record() bool {
	v, ok := m.fields["record"]
	if !ok {
		return true
	}
	return v.GetBoolValue()
}
